"""The VideoSpec form, built from the schema the facade serves (GET /config), so its fields,
defaults and bounds never drift from the API's. Widgets keep their values in the session
under `f.<field>`: a preset or "make again" fills them by setting those keys.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from webui.i18n import t

# Groups as users know them (and as `mpt make --help` shows them).
GROUPS: list[tuple[str, list[str]]] = [
    ("group.frame", ["aspect", "resolution", "fps", "fit", "background", "background_color"]),
    ("group.footage", ["clip_duration", "clip_speed", "upscale", "concat", "video_count"]),
    ("group.transitions", ["transition", "transition_duration"]),
    ("group.voice", ["voice", "speech_rate", "voice_volume", "sentence_pause"]),
    ("group.subtitles", ["subtitles"]),
    ("group.music", ["music_volume", "music_fade_out", "duck", "tail_s"]),
    ("group.output", ["loudness", "preset", "crf", "encoder", "seed", "review"]),
]
# Set by the page itself (text areas, uploads), not by a generic widget.
OWN_WIDGETS = {"topic", "script", "language", "materials_dir", "audio", "music"}
HEX = "^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$"
PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]


def _resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """A property with its $ref followed and a nullable anyOf unwrapped."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return {
            **schema.get("$defs", {}).get(name, {}),
            **{k: v for k, v in prop.items() if k != "$ref"},
        }
    if "anyOf" in prop:
        real = next((p for p in prop["anyOf"] if p.get("type") != "null"), {})
        return {**real, **{k: v for k, v in prop.items() if k != "anyOf"}, "nullable": True}
    return prop


def widget(schema: dict[str, Any], name: str, prop: dict[str, Any], label_key: str) -> Any:
    """One field's widget, its value from the session (or the schema's default)."""
    p = _resolve(schema, prop)
    key = f"f.{label_key.removeprefix('field.')}"
    label = t(label_key)
    default = p.get("default")
    help_text = p.get("description")
    if "enum" in p:
        options = list(p["enum"])
        if key not in st.session_state:
            st.session_state[key] = default if default in options else options[0]
        return st.selectbox(label, options, key=key, help=help_text)
    kind = p.get("type")
    if kind == "boolean":
        st.session_state.setdefault(key, bool(default))
        return st.checkbox(label, key=key, help=help_text)
    if kind in ("integer", "number"):
        if p.get("nullable"):
            st.session_state.setdefault(key, "" if default is None else str(default))
            text = st.text_input(label, key=key, help=help_text)
            try:
                return (
                    None if not text.strip() else (int(text) if kind == "integer" else float(text))
                )
            except ValueError:
                return text  # the facade says what is wrong with it, in one line
        step = 1 if kind == "integer" else 0.1
        cast = int if kind == "integer" else float
        st.session_state.setdefault(
            key, cast(default if default is not None else p.get("minimum", 0))
        )
        return st.number_input(
            label,
            min_value=cast(p["minimum"]) if "minimum" in p else None,
            max_value=cast(p["maximum"]) if "maximum" in p else None,
            step=step,
            key=key,
            help=help_text,
        )
    if p.get("pattern") == HEX:
        st.session_state.setdefault(key, (default or "#000000")[:7])
        return st.color_picker(label, key=key, help=help_text)
    if name == "preset":
        st.session_state.setdefault(key, default)
        return st.selectbox(label, PRESETS, key=key, help=help_text)
    st.session_state.setdefault(key, default or "")
    return st.text_input(label, key=key, help=help_text)


def group(schema: dict[str, Any], fields: list[str], voices: list[str]) -> dict[str, Any]:
    """The widgets of one group; the spec's fields they set."""
    out: dict[str, Any] = {}
    props = schema["properties"]
    for name in fields:
        if name == "subtitles":
            sub = _resolve(schema, props["subtitles"])
            values = {}
            cols = st.columns(2)
            for i, (field, prop) in enumerate(sub["properties"].items()):
                with cols[i % 2]:
                    values[field] = widget(schema, field, prop, f"field.subtitles.{field}")
            out["subtitles"] = values
        elif name == "voice" and voices:
            key = "f.voice"
            st.session_state.setdefault(key, props["voice"]["default"])
            if st.session_state[key] not in voices:
                voices = [st.session_state[key], *voices]
            out["voice"] = st.selectbox(t("field.voice"), voices, key=key)
        else:
            out[name] = widget(schema, name, props[name], f"field.{name}")
    return out


def load_into_session(spec: dict[str, Any]) -> None:
    """Fill the form's widgets from a spec (a preset, or a task made again)."""
    for name, value in spec.items():
        if name == "subtitles" and isinstance(value, dict):
            for field, v in value.items():
                st.session_state[f"f.subtitles.{field}"] = v
        elif name in ("seed", "loudness"):
            st.session_state[f"f.{name}"] = "" if value is None else str(value)
        elif value is not None:
            st.session_state[f"f.{name}"] = value
