"""Settings: the facade's address, its health, and whether the network providers answer."""

from __future__ import annotations

import streamlit as st

from api.client import FacadeError
from webui.i18n import t
from webui.ui import api_url, error, facade

st.title(t("settings.title"))
address = st.text_input(t("settings.api_url"), value=api_url(), key="settings_api_url")
if address.rstrip("/") != api_url():
    st.session_state["api_url"] = address.rstrip("/")

st.subheader(t("settings.health"))
try:
    health = facade().health()
except FacadeError as exc:
    error(exc)
else:
    for name, result in health.checks.items():
        ok = result == "ok"
        icon = ":material/check_circle:" if ok else ":material/cancel:"
        st.markdown(f"{icon} **{name}**: {t('settings.ok') if ok else result}")

if st.session_state.get("who") and st.button(t("settings.providers"), key="providers"):
    try:
        checks = facade().providers()
    except FacadeError as exc:
        error(exc)
    else:
        if not checks:
            st.info(t("settings.no_providers"))
        for c in checks:
            mark = ":material/check_circle:" if c.answered else ":material/cancel:"
            st.markdown(f"{mark} **{c.provider}** ({c.kind}, {c.seconds:.2f} s): {c.detail}")
