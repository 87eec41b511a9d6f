"""A campaign: many videos from rows of partial specs, with defaults for all of them.

Rows come from CSV, Parquet or JSON Lines (read with polars) or straight from JSON; their
columns are VideoSpec field names, nested ones with dots (`subtitles.position`). Every row is
checked before any work starts: an unknown column is refused with the valid ones, a bad
value names its row, its field and the reason.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blocks.errors import BadInput
from flows.spec import VideoSpec
from tasks.options import SubtitleStyle, ordered_schema

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
        None, title="Owner", description="Whose tasks the rows are (set by the service)."
    )


class RowProblem(BaseModel):
    """Why one row cannot be made: its number (1 = the first row after a header)."""

    row: int
    field: str | None
    message: str

    def line(self) -> str:
        where = f"row {self.row}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.message}"


def valid_columns() -> list[str]:
    """Every column a campaign file may have."""
    nested = [f"subtitles.{name}" for name in SubtitleStyle.model_fields]
    return [*VideoSpec.model_fields, *nested]


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
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


def _flatten(row: dict[str, Any]) -> set[str]:
    keys = set()
    for key, value in row.items():
        if key == "subtitles" and isinstance(value, dict):
            keys |= {f"subtitles.{k}" for k in value}
        else:
            keys.add(key)
    return keys


def check_columns(columns: set[str]) -> None:
    """Refuse any column that is no VideoSpec field, naming the valid ones."""
    valid = set(valid_columns()) | {"subtitles"}
    unknown = sorted(columns - valid)
    if unknown:
        listed = ", ".join(valid_columns())
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
    check_columns(set().union(*(_flatten(r) for r in campaign.rows)) | _flatten(campaign.defaults))
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


def format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise BadInput(f"unsupported file type '{suffix or name}'; use CSV, Parquet or JSON Lines")
    return FORMATS[suffix]


def read_rows(data: bytes, fmt: str, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The rows of a CSV, Parquet or JSON Lines file, nested by their dotted columns."""
    import polars as pl

    if not data.strip():
        raise BadInput("the file is empty")
    try:
        if fmt == "csv":
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadInput(f"the file is not UTF-8 text (byte {exc.start})") from None
            # Every cell as text: the spec's own validation turns "23" into a number.
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
        elif fmt == "parquet":
            frame = pl.read_parquet(io.BytesIO(data))
        else:
            frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - polars' errors name the problem; one line
        text = re.sub(r"\s+", " ", str(exc)).strip()[:200]
        raise BadInput(f"cannot read the {fmt} file: {text}") from None
    check_columns(set(frame.columns))
    if frame.height == 0:
        raise BadInput("the file has a header but no rows")
    if max_rows is not None and frame.height > max_rows:
        raise BadInput(f"the file has {frame.height} rows; the limit is {max_rows}")
    return [_nest(row) for row in frame.to_dicts()]


def read_file(path: Path, max_rows: int | None = None) -> list[dict[str, Any]]:
    fmt = format_of(path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    return read_rows(data, fmt, max_rows)
