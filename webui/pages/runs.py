"""Runs: the user's runs by state, live while any goes; play, download, cancel, make again."""

from __future__ import annotations

import streamlit as st

from api.client import FacadeError
from spec.runs import ENDED, SETTLED
from spec.service import RunOut
from webui.i18n import t
from webui.ui import error, facade, require_signin, role, show_run

require_signin()
st.title(t("runs.title"))
TABS = [
    ("runs.all", None),
    ("runs.running", "running"),
    ("runs.completed", "completed"),
    ("runs.failed", "failed"),
]


def _shown(run: RunOut, state: str | None) -> bool:
    return state is None or run.state == state or (state == "running" and run.state == "queued")


def listing() -> None:
    try:
        page = facade().runs(limit=50)
    except FacadeError as exc:
        error(exc)
        return
    items = page.items
    st.session_state["runs_going"] = any(i.state not in SETTLED for i in items)
    for tab, (label, state) in zip(st.tabs([t(label) for label, _ in TABS]), TABS, strict=True):
        with tab:
            mine = [i for i in items if _shown(i, state)]
            if not mine:
                st.caption(t("runs.none"))
            for item in mine:
                run_id = str(item.task_id)
                with st.expander(f"{run_id[:8]} — {item.state} · {item.progress:.0f}%"):
                    st.caption(f"{t('runs.created')}: {item.created_at:%Y-%m-%d %H:%M:%S}")
                    st.progress(min(1.0, item.progress / 100))
                    if item.error:
                        st.error(item.error)
                    if item.state in ("completed", "awaiting_review"):
                        show_run(item, f"{label}-{run_id}")
                    cols = st.columns(2)
                    if (
                        role() != "viewer"
                        and item.state not in ENDED
                        and cols[0].button(t("runs.cancel"), key=f"cancel-{label}-{run_id}")
                    ):
                        try:
                            facade().cancel(run_id)
                            st.success(t("runs.cancelled", run_id=run_id))
                        except FacadeError as exc:
                            error(exc)
                    if role() != "viewer" and cols[1].button(
                        t("runs.again"), key=f"again-{label}-{run_id}"
                    ):
                        _make_again(run_id)
    if st.session_state.get("runs_polling") and not st.session_state["runs_going"]:
        st.session_state["runs_polling"] = False
        st.rerun()  # nothing goes now: the page again, without ticking


def _make_again(run_id: str) -> None:
    """Open Create with this run's settings."""
    try:
        spec = facade().run(run_id).spec
    except FacadeError as exc:
        error(exc)
        return
    st.session_state["prefill"] = spec
    st.switch_page(st.session_state["_pages"]["create"])


# One request a second while anything goes; none once everything has settled.
going = st.session_state.get("runs_going", True)
st.session_state["runs_polling"] = going
st.fragment(run_every=1.0 if going else None)(listing)()
