"""Every label the web UI shows, from one catalogue file per language (locales/<code>.json).

The language is the user's choice (the sidebar's switch), else the browser's
(`st.context.locale`): Simplified Chinese for zh-*, English otherwise.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import streamlit as st

LOCALES = Path(__file__).with_name("locales")
LANGUAGES = {"en": "English", "zh": "简体中文"}


@lru_cache
def catalogue(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def browser_language() -> str:
    locale = (st.context.locale or "").lower()
    return "zh" if locale.startswith("zh") else "en"


def language() -> str:
    chosen = st.session_state.get("lang")
    return chosen if chosen in LANGUAGES else browser_language()


def has(key: str) -> bool:
    """Whether the user's language (or English) has a text for `key`."""
    return key in catalogue(language()) or key in catalogue("en")


def t(key: str, **values: Any) -> str:
    text = catalogue(language()).get(key) or catalogue("en").get(key, key)
    return text.format(**values) if values else text
