"""Sign in with an API key; the key stays in this session only."""

from __future__ import annotations

import streamlit as st

from api.client import FacadeError
from webui.i18n import t
from webui.ui import error, sign_in

st.title(t("signin.title"))
key = st.text_input(t("signin.key"), type="password", key="signin_key", help=t("signin.help"))
if st.button(t("signin.button"), key="signin_button", type="primary"):
    if not key.strip():
        st.error(t("signin.empty"))
    else:
        try:
            sign_in(key.strip())
        except FacadeError as exc:
            error(exc)
        else:
            st.switch_page(st.session_state["_pages"]["create"])
