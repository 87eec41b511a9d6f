"""What the pages share: the signed-in user's facade, the one-line error, a run's view."""

from __future__ import annotations

from typing import Any

import streamlit as st

from api.client import Facade, FacadeError, api_url_from_env
from spec.runs import stages_of
from spec.service import RunOut, ServiceConfig
from webui.i18n import t


def api_url() -> str:
    return st.session_state.get("api_url") or api_url_from_env("MPT_WEBUI__API_URL")


def facade() -> Facade:
    """The facade for this session's key (sign-in keeps it in the session, nowhere else)."""
    key = st.session_state.get("api_key", "")
    client = st.session_state.get("_facade")
    if client is None or client.key != key or client.base != api_url():
        client = Facade(api_url(), key)
        st.session_state["_facade"] = client
    return client


def sign_in(key: str) -> dict[str, Any]:
    """Check the key with the facade; keep it and its role in the session."""
    who = Facade(api_url(), key).whoami().model_dump()
    st.session_state["api_key"] = key
    st.session_state["who"] = who
    return who


def require_signin() -> None:
    """A page for signed-in users, opened without a key (a bookmark): go to Sign in."""
    if not st.session_state.get("who"):
        st.switch_page(st.session_state["_pages"]["signin"])


def role() -> str:
    return (st.session_state.get("who") or {}).get("role", "")


def error(exc: Exception) -> None:
    """One line: the facade's own reason."""
    st.error(t("error.prefix", message=str(exc)), icon=":material/error:")


def config() -> ServiceConfig:
    """The spec's schema and the service's limits, fetched once per session."""
    if "_config" not in st.session_state:
        st.session_state["_config"] = facade().config()
    return st.session_state["_config"]


def absolute(url: str) -> str:
    """A facade URL as a browser can fetch it (the facade answers relative ones without
    MPT_PUBLIC_API_URL; they are the facade's, not this page's)."""
    return facade().absolute(url)


def show_run(run: RunOut, key: str) -> None:
    """A finished (or reviewable) run: its player, downloads and social text."""
    signed = {name: absolute(url) for name, url in run.signed_urls.items()}
    if signed.get("video"):
        player, _ = st.columns([2, 3])  # a phone-shaped video need not fill a wide page
        player.video(signed["video"])
    cols = st.columns(3)
    for col, (name, label) in zip(
        cols,
        [
            ("video", "create.download_video"),
            ("srt", "create.download_srt"),
            ("manifest", "create.download_manifest"),
        ],
        strict=True,
    ):
        if signed.get(name):
            col.link_button(t(label), f"{signed[name]}&download=1", key=f"{key}-{name}")
    if signed.get("manifest"):
        try:
            import json

            manifest = json.loads(facade().fetch(signed["manifest"]))
        except (FacadeError, ValueError):
            manifest = {}
        social = manifest.get("social")
        if social:
            st.markdown(f"**{t('create.social')}**")
            st.write(f"**{social.get('title', '')}**")
            st.write(social.get("description", ""))
            st.write(" ".join(social.get("hashtags", [])))


def stage_lines(run: RunOut, seen: dict[str, float]) -> list[str]:
    """Each stage with its state (done, running, waiting) and, once done, its time: `seen`
    holds when the page first saw each stage start."""
    current = run.stage
    done = run.state == "completed"
    upscale = "auto" if current == "upscale" else str(run.spec.get("upscale", "none"))
    stages = stages_of(run.kind, upscale)
    at = stages.index(current) if current in stages else (len(stages) if done else -1)
    lines = []
    for i, stage in enumerate(stages):
        name = t("stage." + stage)
        if done or i < at:
            later = stages[i + 1] if i + 1 < len(stages) else "end"
            start, end = seen.get(stage), seen.get(later)
            took = f" — {end - start:.1f} s" if start is not None and end is not None else ""
            lines.append(f":material/check_circle: {name}{took}")
        elif i == at:
            lines.append(f":material/progress_activity: {name}")
        else:
            lines.append(f":material/radio_button_unchecked: {name}")
    return lines
