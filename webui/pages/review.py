"""Review: videos waiting for a decision, each with its player; approve or reject with a note."""

from __future__ import annotations

import streamlit as st

from webui.client import FacadeError
from webui.i18n import t
from webui.ui import absolute, error, facade, require_signin, role

require_signin()
st.title(t("review.title"))
try:
    waiting = facade().tasks(state="awaiting_review", limit=50)["items"]
except FacadeError as exc:
    error(exc)
    st.stop()
if not waiting:
    st.caption(t("review.none"))
for task in waiting:
    task_id = task["task_id"]
    with st.container(border=True):
        st.markdown(f"**{(task.get('spec') or {}).get('topic') or task_id}**")
        video = (task.get("signed_urls") or {}).get("video")
        if video:
            st.columns([2, 3])[0].video(absolute(video))
        if role() == "viewer":
            continue
        note = st.text_input(t("review.note"), key=f"note-{task_id}")
        approve, reject = st.columns(2)
        decision = None
        if approve.button(t("review.approve"), key=f"approve-{task_id}", type="primary"):
            decision = True
        if reject.button(t("review.reject"), key=f"reject-{task_id}"):
            decision = False
        if decision is not None:
            try:
                facade().review(task_id, decision, note)
            except FacadeError as exc:
                error(exc)
            else:
                key = "review.approved" if decision else "review.rejected"
                st.success(t(key, task_id=task_id))
