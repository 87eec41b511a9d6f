"""A campaign: many videos from rows of partial specs, with defaults for all of them.

A row's columns are VideoSpec field names, nested ones with dots (`subtitles.position`). Every
row is checked before any work starts: an unknown column is refused with the valid ones, a
bad value names its row, its field and the reason. Reading rows from files is `flows.campaign`'s.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spec.errors import BadInput
from spec.form import ordered_schema
from spec.video import VideoSpec

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class Campaign(BaseModel):
    """A batch of videos: each row a partial VideoSpec, `defaults` filling what a row leaves
    out. Run as one batch flow; each row is a video flow run of its own."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ordered_schema)

    name: str = Field(
        ...,
        title="Name",
        description="Lower-case letters, digits, '-' and '_'; names the output folder.",
        pattern=NAME_PATTERN,
    )
    rows: list[dict[str, Any]] = Field(
        ...,
        title="Rows",
        description="Each a partial VideoSpec (at least a topic or a script).",
        min_length=1,
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        title="Defaults",
        description="VideoSpec fields for every row that does not set them.",
    )
    concurrency: int = Field(
        2, title="Videos at once", description="Run locally: rows made at once.", ge=1, le=16
    )
    skip_invalid: bool = Field(
        False,
        title="Skip invalid rows",
        description="Make the good rows and report the bad ones, instead of refusing all.",
    )
    out_dir: str | None = Field(
        None,
        title="Output folder",
        description="Where the videos and report go; by default <output root>/<name>/<time>.",
    )
    owner: str | None = Field(
        None, title="Owner", description="Whose runs the rows are (set by the service)."
    )


class RowProblem(BaseModel):
    """Why one row cannot be made: its number (1 = the first row after a header)."""

    row: int
    field: str | None
    message: str

    def line(self) -> str:
        where = f"row {self.row}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.message}"


def problems_line(problems: list[RowProblem]) -> str:
    """The first few problems in one line, as every entry point refuses a batch."""
    listed = "; ".join(p.line() for p in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return f"{len(problems)} invalid row(s): {listed}{more}"


def _nested_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    out = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out[name] = kind
    return out


def valid_columns(model: type[BaseModel] = VideoSpec) -> list[str]:
    """Every column a campaign row may have."""
    nested = [
        f"{name}.{sub}" for name, kind in _nested_models(model).items() for sub in kind.model_fields
    ]
    return [*model.model_fields, *nested]


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """`{"subtitles.position": "top"}` → `{"subtitles": {"position": "top"}}`; empty cells
    (and a nested object's missing fields) are left out, so the defaults apply."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if not _empty(v)} or None
        if _empty(value):
            continue
        head, _, tail = key.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def _flatten(row: dict[str, Any], nested: dict[str, type[BaseModel]]) -> set[str]:
    keys = set()
    for key, value in row.items():
        if key in nested and isinstance(value, dict):
            keys |= {f"{key}.{k}" for k in value}
        else:
            keys.add(key)
    return keys


def check_columns(columns: set[str], model: type[BaseModel] = VideoSpec) -> None:
    """Refuse any column that is no VideoSpec field, naming the valid ones."""
    valid = set(valid_columns(model)) | set(_nested_models(model))
    unknown = sorted(columns - valid)
    if unknown:
        listed = ", ".join(valid_columns(model))
        raise BadInput(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid columns: {listed}"
        )


def merge(defaults: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The row over the defaults; nested objects (subtitles) merge field by field."""
    out = dict(defaults)
    for key, value in row.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def validate_rows(
    campaign: Campaign, model: type[VideoSpec] = VideoSpec
) -> tuple[list[tuple[int, VideoSpec]], list[RowProblem]]:
    """Each row (over the defaults) as a spec, or the reason it cannot be one."""
    nested = _nested_models(model)
    columns = set().union(*(_flatten(r, nested) for r in campaign.rows))
    check_columns(columns | _flatten(campaign.defaults, nested), model)
    specs, problems = [], []
    for number, row in enumerate(campaign.rows, start=1):
        try:
            specs.append((number, model.model_validate(merge(campaign.defaults, row))))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ()))
            message = re.sub(r"^(Value|Assertion) error, ", "", str(err.get("msg", exc)))
            problems.append(RowProblem(row=number, field=field or None, message=message))
    return specs, problems
