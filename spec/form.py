"""How a request is laid out as a form: its fields in groups, in the order a person fills
them. `mpt make --help` shows the groups as panels, the web UI as sections, and the Prefect
UI's run form orders its fields by the positions given here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonDict


class Group(StrEnum):
    script = "script"
    frame = "frame"
    footage = "footage"
    transitions = "transitions"
    voice = "voice"
    subtitles = "subtitles"
    music = "music"
    mix = "mix"
    encode = "encode"  # type: ignore[assignment]  # named like str.encode: a value all the same
    output = "output"


TITLES = {
    Group.script: "Script",
    Group.frame: "Frame",
    Group.footage: "Footage and cutting",
    Group.transitions: "Transitions",
    Group.voice: "Voice",
    Group.subtitles: "Subtitles",
    Group.music: "Music",
    Group.mix: "Mix",
    Group.encode: "Encode",
    Group.output: "Output",
}
_RANK = {g.value: i for i, g in enumerate(Group)}


def group(name: Group) -> JsonDict:
    """A field's `json_schema_extra`: its group travels in the schema, so a client that has
    only the schema (the web UI, an agent) groups the form the same way."""
    return {"group": name.value}


def group_of(field: FieldInfo) -> Group | None:
    extra = field.json_schema_extra
    name = extra.get("group") if isinstance(extra, dict) else None
    return Group(name) if isinstance(name, str) else None


def ordered_fields(model: type[BaseModel]) -> list[str]:
    """The model's field names, group by group, each group in declaration order."""
    names = list(model.model_fields)

    def rank(name: str) -> tuple[int, int]:
        found = group_of(model.model_fields[name])
        return (_RANK[found.value] if found else len(_RANK), names.index(name))

    return sorted(names, key=rank)


def ordered_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Properties in form order, each with its `position`: forms (the Prefect UI's) sort by
    it, since PostgreSQL's JSONB stores a deployment's schema with its keys reordered."""
    props = schema.get("properties", {})
    order = [name for name in ordered_fields(model) if name in props]
    order += [name for name in props if name not in order]  # aliases, if ever any
    schema["properties"] = {name: props[name] for name in order}
    for i, name in enumerate(order):
        schema["properties"][name]["position"] = i


def schema_groups(schema: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(group, fields) in form order, from a JSON schema alone (the web UI has no models)."""
    out: dict[str, list[str]] = {}
    for name, prop in schema.get("properties", {}).items():
        out.setdefault(prop.get("group") or "other", []).append(name)
    return sorted(out.items(), key=lambda item: _RANK.get(item[0], len(_RANK)))
