"""The web UI: `streamlit run webui/app.py` (make ui), a client of the REST facade only.

Pages: sign in, create, runs, campaigns, review, settings. The facade's address is
MPT_WEBUI__API_URL (default http://127.0.0.1:8080); with MPT_WEBUI__API_KEY set the UI signs
in with that key (a one-person local set-up).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `webui` as a package

from api.client import FacadeError  # noqa: E402
from webui.i18n import LANGUAGES, language, t  # noqa: E402
from webui.ui import error, sign_in  # noqa: E402

PAGES = Path(__file__).with_name("pages")

st.set_page_config(page_title="MoneyPrinterTurbo++", page_icon=":material/movie:", layout="wide")

auto_key = os.environ.get("MPT_WEBUI__API_KEY")
if auto_key and "api_key" not in st.session_state:
    try:
        sign_in(auto_key)
    except FacadeError as exc:
        error(exc)

with st.sidebar:
    codes = list(LANGUAGES)
    st.selectbox(
        t("lang.label"),
        codes,
        index=codes.index(language()),
        format_func=LANGUAGES.get,
        key="lang",
    )
    who = st.session_state.get("who")
    if who:
        st.caption(t("signin.signed_in", owner=who["owner"], role=who["role"]))
        if st.button(t("signin.sign_out"), key="sign_out"):
            for name in ("api_key", "who", "_facade", "_config"):
                st.session_state.pop(name, None)
            st.rerun()

signed_in = bool(st.session_state.get("who"))
# Every page is always known (so a page can switch to any); those the user cannot use yet are
# hidden: signed out, only Sign in and Settings show; signed in, all but Sign in.
member, guest = ("visible", "hidden") if signed_in else ("hidden", "visible")
pages = {
    "signin": st.Page(
        PAGES / "signin.py",
        title=t("nav.signin"),
        icon=":material/key:",
        url_path="signin",
        visibility=guest,
        default=not signed_in,
    ),
    "create": st.Page(
        PAGES / "create.py",
        title=t("nav.create"),
        icon=":material/movie:",
        url_path="create",
        visibility=member,
        default=signed_in,
    ),
    "runs": st.Page(
        PAGES / "runs.py",
        title=t("nav.runs"),
        icon=":material/list:",
        url_path="runs",
        visibility=member,
    ),
    "campaigns": st.Page(
        PAGES / "campaigns.py",
        title=t("nav.campaigns"),
        icon=":material/table_view:",
        url_path="campaigns",
        visibility=member,
    ),
    "review": st.Page(
        PAGES / "review.py",
        title=t("nav.review"),
        icon=":material/rate_review:",
        url_path="review",
        visibility=member,
    ),
    "settings": st.Page(
        PAGES / "settings.py",
        title=t("nav.settings"),
        icon=":material/settings:",
        url_path="settings",
    ),
}
st.session_state["_pages"] = pages
st.navigation(list(pages.values())).run()
