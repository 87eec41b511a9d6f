"""Review: videos waiting for a decision, each with its player; approve or reject with a note."""

from __future__ import annotations

import streamlit as st

from api.client import FacadeError
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
for run in waiting:
    run_id = str(run.task_id)
    with st.container(border=True):
        st.markdown(f"**{run.spec.get('topic') or run_id}**")
        video = run.signed_urls.get("video")
        if video:
            st.columns([2, 3])[0].video(absolute(video))
        if role() == "viewer":
            continue
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
