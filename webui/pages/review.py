"""Review: runs waiting for someone. A storyboard: each scene with a still of its clip, to
swap for another candidate, replace with an upload or search again with new terms, then
render. A finished video: its player, to approve or reject with a note."""

from __future__ import annotations

import streamlit as st

from api.client import FacadeError
from spec.scenes import SceneEdit, Storyboard, StoryboardEdit
from spec.service import RunOut
from webui.i18n import t
from webui.ui import absolute, error, facade, require_signin, role

require_signin()
st.title(t("review.title"))
try:
    waiting = facade().runs(state="awaiting_review", limit=50).items
except FacadeError as exc:
    error(exc)
    st.stop()
if not waiting:
    st.caption(t("review.none"))


def storyboard(run: RunOut, run_id: str) -> None:
    """Each scene's clip and candidates; the changes go with the Render button."""
    try:
        board: Storyboard = facade().storyboard(run_id)
    except FacadeError as exc:
        error(exc)
        return
    st.caption(t("review.storyboard", scenes=len(board.scenes)))
    edits: list[SceneEdit] = []
    viewer = role() == "viewer"
    for scene in board.scenes:
        key = f"sb-{run_id}-{scene.index}"
        with st.container(border=True, key=f"scene-{key}"):
            still, words = st.columns([1, 3])
            if scene.clip.thumbnail:
                still.image(absolute(scene.clip.thumbnail))
            words.markdown(
                f"**{scene.index + 1}** · {scene.start_s:.1f}–{scene.end_s:.1f} s · {scene.text}"
            )
            words.caption(f"{scene.clip.source}: {scene.clip.name} — {scene.reason}")
            if viewer:
                continue
            names = [f"{i + 1}. {c.source}: {c.name}" for i, c in enumerate(scene.candidates)]
            now = next(
                (
                    i
                    for i, c in enumerate(scene.candidates)
                    if (c.name, c.source) == (scene.clip.name, scene.clip.source)
                ),
                None,
            )
            if scene.candidates:
                shown = [(c.thumbnail, n) for c, n in zip(scene.candidates, names, strict=True)]
                shown = [(absolute(u), n) for u, n in shown if u][:4]
                if shown:
                    words.image([u for u, _ in shown], width=120, caption=[n for _, n in shown])
                picked = words.selectbox(
                    t("review.candidate"),
                    range(len(names)),
                    index=now,
                    format_func=names.__getitem__,
                    key=f"{key}-candidate",
                )
            else:
                picked = None
            terms = words.text_input(
                t("review.terms"), value=", ".join(scene.terms), key=f"{key}-terms"
            )
            upload = words.file_uploader(t("review.own_clip"), key=f"{key}-upload")
            edit = SceneEdit(index=scene.index)
            if picked is not None and picked != now:
                edit.candidate = picked
            new_terms = [w.strip() for w in terms.split(",") if w.strip()][:3]
            if new_terms and new_terms != scene.terms:
                edit.terms = new_terms
            if upload is not None:
                sent = st.session_state.setdefault("review_uploads", {})
                if upload.file_id not in sent:
                    try:
                        sent[upload.file_id] = facade().upload(upload.name, upload.getvalue()).path
                    except FacadeError as exc:
                        error(exc)
                edit.clip = sent.get(upload.file_id)
            if edit.candidate is not None or edit.terms or edit.clip:
                edits.append(edit)
    if not viewer and st.button(t("review.render"), key=f"render-{run_id}", type="primary"):
        try:
            facade().set_storyboard(run_id, StoryboardEdit(scenes=edits))
        except FacadeError as exc:
            error(exc)
        else:
            st.success(t("review.rendering", run_id=run_id, changed=len(edits)))


def video(run: RunOut, run_id: str) -> None:
    video_url = run.signed_urls.get("video")
    if video_url:
        st.columns([2, 3])[0].video(absolute(video_url))
    if role() == "viewer":
        return
    note = st.text_input(t("review.note"), key=f"note-{run_id}")
    approve, reject = st.columns(2)
    decision = None
    if approve.button(t("review.approve"), key=f"approve-{run_id}", type="primary"):
        decision = True
    if reject.button(t("review.reject"), key=f"reject-{run_id}"):
        decision = False
    if decision is not None:
        try:
            facade().review(run_id, decision, note)
        except FacadeError as exc:
            error(exc)
        else:
            key = "review.approved" if decision else "review.rejected"
            st.success(t(key, run_id=run_id))


for run in waiting:
    run_id = str(run.task_id)
    with st.container(border=True):
        st.markdown(f"**{run.spec.get('topic') or run_id}**")
        if run.stage == "storyboard":
            storyboard(run, run_id)
        else:
            video(run, run_id)
