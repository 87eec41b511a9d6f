"""`mpt make`'s options, derived from the spec: a flag per field, named as the field with dashes
(a nested model's fields as `--subtitles-size`, its `enabled` switch as `--subtitles`), help
from the field's description, panels from its group, choices and bounds from its type.

A campaign column or a REST body field is the flag's name with underscores (and a dot for a
nested field): `--subtitles-stroke-color` is `subtitles.stroke_color`.
"""

from __future__ import annotations

import inspect
import json
import types
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from spec.form import TITLES, Group, group_of, ordered_fields

OFF = ("off", "none")  # what a nullable number takes to mean "none"
SET_NONE = object()  # given as `off`: set to None (a None value means "not given")


def or_off(kind: type) -> Any:
    """A parser of a number, or `off` for none (a field whose default is a number but may be
    empty); its bounds are the spec's to check."""

    def parse(value: Any) -> Any:
        if value is SET_NONE or isinstance(value, str) and value.strip().lower() in OFF:
            return SET_NONE
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a number or 'off'") from None

    return parse


def json_value(value: Any) -> Any:
    """JSON text, or a file holding it (`scenes.json`, or `@scenes.json`): lists and objects
    the flags cannot spell out."""
    if not isinstance(value, str):
        return value
    text = value
    named = value[1:] if value.startswith("@") else value
    if value.startswith("@") or value.strip()[:1] not in ("[", "{", '"'):
        try:
            text = Path(named).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise typer.BadParameter(f"cannot read {named}: {why}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from None


def _unwrap(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """(the type, whether None is allowed, the constraints found on the way)."""
    nullable, constraints = False, []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for e in extra:
                constraints += e.metadata if isinstance(e, FieldInfo) else [e]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return Any, nullable, constraints
            annotation = args[0]
        else:
            return annotation, nullable, constraints


def _bounds(constraints: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in constraints:
        if isinstance(c, annotated_types.Ge):
            out["min"] = c.ge
        elif isinstance(c, annotated_types.Le):
            out["max"] = c.le
        elif isinstance(c, annotated_types.Gt):
            out["min"], out["min_open"] = c.gt, True
        elif isinstance(c, annotated_types.Lt):
            out["max"], out["max_open"] = c.lt, True
    return out


def _default(default: Any) -> Any:
    """A field's default as the command line spells it (shown in the help)."""
    if isinstance(default, Enum):
        return default.value
    return None if isinstance(default, BaseModel) else default


def option(param: str, flag: str, field: FieldInfo, panel: str) -> inspect.Parameter:
    """One keyword parameter of the command for one field; the spec key it sets is the
    parameter's name with `__` for a dot. Its default is the field's, for the help: what is
    not given on the command line is left to the spec (`given`)."""
    kind, nullable, constraints = _unwrap(field.annotation)
    constraints += list(field.metadata)
    common: dict[str, Any] = {
        "help": field.description or field.title or "",
        "rich_help_panel": panel,
    }
    names = [f"--{flag}"]
    py: Any = kind
    if kind is bool:
        names, common["metavar"] = [f"--{flag}/--no-{flag}"], ""  # a flag: no <bool>
    elif isinstance(kind, type) and issubclass(kind, Enum):
        pass  # its values are the choices
    elif kind in (int, float) and nullable and field.default is not None:
        common |= {"parser": or_off(kind), "metavar": f"{kind.__name__.upper()}|off"}
        py = object
    elif kind in (int, float):
        common |= _bounds(constraints)
    elif kind not in (Path, str):  # lists, objects: JSON
        common |= {"parser": json_value, "metavar": "FILE|JSON"}
        py = object
    default = _default(field.get_default(call_default_factory=False))
    annotation = Annotated[py | None, typer.Option(*names, **common)]
    return inspect.Parameter(
        param, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def spec_options(model: type[BaseModel], skip: set[str]) -> list[inspect.Parameter]:
    """A parameter per field of `model` (and of its nested models), in form order."""
    params = []
    for name in ordered_fields(model):
        if name in skip:
            continue
        field = model.model_fields[name]
        group = group_of(field)
        panel = TITLES[group] if group else TITLES[Group.output]
        kind, _, _ = _unwrap(field.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            for sub in ordered_fields(kind):
                sub_field = kind.model_fields[sub]
                flag = name if sub == "enabled" else f"{name}-{sub}".replace("_", "-")
                params.append(option(f"{name}__{sub}", flag, sub_field, panel))
        else:
            params.append(option(name, name.replace("_", "-"), field, panel))
    return params


def spec_fields(ctx: typer.Context, values: dict[str, Any]) -> dict[str, Any]:
    """The values given on the command line (not left at their defaults) as spec fields,
    `a__b` nested as {"a": {"b": ...}}."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        source = ctx.get_parameter_source(key)
        if source is None or source.name == "DEFAULT":
            continue
        if value is SET_NONE:
            value = None
        elif isinstance(value, Enum):
            value = value.value
        head, _, tail = key.partition("__")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out
