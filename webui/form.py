"""The VideoSpec form, built from the schema the facade serves (GET /config): its groups, fields,
labels, defaults, bounds and choices are the spec's, so a field added to the spec appears here
with no edit. Labels are the fields' titles, translated where the catalogue has
`field.<name>`. Widgets keep their values in the session under `f.<field>`: a preset or
"make again" fills them by setting those keys.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from spec.form import TITLES, Group, schema_groups
from spec.options import HEX_COLOUR
from webui.i18n import has, t

# Set by the page itself (text areas, uploads), not by a generic widget.
OWN_WIDGETS = {"topic", "script", "language", "materials_dir", "audio", "music"}


def groups(schema: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(group, fields the generic widgets draw) in form order; the script group is the
    page's own."""
    return [
        (name, [f for f in fields if f not in OWN_WIDGETS])
        for name, fields in schema_groups(schema)
        if name != Group.script.value
    ]


def group_label(name: str) -> str:
    key = f"group.{name}"
    if has(key):
        return t(key)
    return TITLES.get(Group(name), name) if name in Group.__members__ else name


def field_label(name: str, prop: dict[str, Any]) -> str:
    """The field's title, or its translation."""
    key = f"field.{name}"
    return t(key) if has(key) else str(prop.get("title") or name)


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
        real = _resolve(schema, real)
        return {**real, **{k: v for k, v in prop.items() if k != "anyOf"}, "nullable": True}
    return prop


def widget(schema: dict[str, Any], name: str, prop: dict[str, Any], path: str) -> Any:
    """One field's widget, its value from the session (or the schema's default)."""
    p = _resolve(schema, prop)
    key = f"f.{path}"
    label = field_label(path, p)
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
    if p.get("pattern") == HEX_COLOUR:
        st.session_state.setdefault(key, (default or "#000000")[:7])
        return st.color_picker(label, key=key, help=help_text)
    st.session_state.setdefault(key, "" if default is None else str(default))
    text = st.text_input(label, key=key, help=help_text)
    return None if p.get("nullable") and not text.strip() else text


def group(schema: dict[str, Any], fields: list[str], voices: list[str]) -> dict[str, Any]:
    """The widgets of one group; the spec's fields they set."""
    out: dict[str, Any] = {}
    props = schema["properties"]
    for name in fields:
        prop = _resolve(schema, props[name])
        if "properties" in prop:  # a nested model (subtitles): its fields, two columns
            values = {}
            cols = st.columns(2)
            for i, (field, sub) in enumerate(prop["properties"].items()):
                with cols[i % 2]:
                    values[field] = widget(schema, field, sub, f"{name}.{field}")
            out[name] = values
        elif name == "voice" and voices:
            key = "f.voice"
            st.session_state.setdefault(key, prop["default"])
            if st.session_state[key] not in voices:
                voices = [st.session_state[key], *voices]
            out["voice"] = st.selectbox(field_label("voice", prop), voices, key=key)
        else:
            out[name] = widget(schema, name, props[name], name)
    return out


def load_into_session(spec: dict[str, Any], schema: dict[str, Any]) -> None:
    """Fill the form's widgets from a spec (a preset, or a run made again)."""
    props = schema.get("properties", {})
    for name, value in spec.items():
        prop = _resolve(schema, props.get(name, {}))
        if isinstance(value, dict):
            for field, v in value.items():
                st.session_state[f"f.{name}.{field}"] = v
        elif prop.get("nullable") and prop.get("type") in ("integer", "number"):
            st.session_state[f"f.{name}"] = "" if value is None else str(value)  # a text box
        elif value is not None:
            st.session_state[f"f.{name}"] = value
