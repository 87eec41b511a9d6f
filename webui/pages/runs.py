"""Tasks: the user's tasks by state, live while any runs; play, download, cancel, make again."""

from __future__ import annotations

import streamlit as st

from webui.client import FacadeError
from webui.i18n import t
from webui.ui import ENDED, error, facade, require_signin, role, show_task

require_signin()
st.title(t("tasks.title"))
TABS = [
    ("tasks.all", None),
    ("tasks.running", "running"),
    ("tasks.completed", "completed"),
    ("tasks.failed", "failed"),
]


def listing() -> None:
    try:
        page = facade().tasks(limit=50)
    except FacadeError as exc:
        error(exc)
        return
    items = page["items"]
    st.session_state["tasks_running"] = any(
        i["state"] not in ENDED | {"awaiting_review"} for i in items
    )
    for tab, (label, state) in zip(st.tabs([t(label) for label, _ in TABS]), TABS, strict=True):
        with tab:
            mine = [
                i
                for i in items
                if state is None
                or i["state"] == state
                or (state == "running" and i["state"] == "queued")
            ]
            if not mine:
                st.caption(t("tasks.none"))
            for item in mine:
                title = item["task_id"][:8]
                label_state = f"{item['state']} · {item['progress']:.0f}%"
                with st.expander(f"{title} — {label_state}", expanded=False):
                    st.caption(f"{t('tasks.created')}: {item['created_at'][:19]}")
                    st.progress(min(1.0, item["progress"] / 100))
                    if item.get("error"):
                        st.error(item["error"])
                    if item["state"] in ("completed", "awaiting_review"):
                        show_task(item, f"{label}-{item['task_id']}")
                    cols = st.columns(2)
                    if (
                        role() != "viewer"
                        and item["state"] not in ENDED
                        and cols[0].button(
                            t("tasks.cancel"), key=f"cancel-{label}-{item['task_id']}"
                        )
                    ):
                        try:
                            facade().cancel(item["task_id"])
                            st.success(t("tasks.cancelled", task_id=item["task_id"]))
                        except FacadeError as exc:
                            error(exc)
                    if role() != "viewer" and cols[1].button(
                        t("tasks.again"), key=f"again-{label}-{item['task_id']}"
                    ):
                        _make_again(item["task_id"])
    if st.session_state.get("tasks_polling") and not st.session_state["tasks_running"]:
        st.session_state["tasks_polling"] = False
        st.rerun()  # nothing runs now: the page again, without ticking


def _make_again(task_id: str) -> None:
    """Open Create with this task's settings."""
    try:
        spec = facade().task(task_id).get("spec") or {}
    except FacadeError as exc:
        error(exc)
        return
    st.session_state["prefill"] = spec
    st.switch_page(st.session_state["_pages"]["create"])


# One request a second while anything runs; none once everything has ended.
running = st.session_state.get("tasks_running", True)
st.session_state["tasks_polling"] = running
st.fragment(run_every=1.0 if running else None)(listing)()
