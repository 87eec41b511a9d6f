"""A campaign's rows read from a file: CSV, Parquet or JSON Lines, read with polars. Their
columns are VideoSpec field names, nested ones with dots (`subtitles.position`); the rows and
their checks are `spec.campaign`'s.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from blocks.errors import BadInput
from spec.campaign import check_columns, nest

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
    return [nest(row) for row in frame.to_dicts()]


def read_file(path: Path, max_rows: int | None = None) -> list[dict[str, Any]]:
    fmt = format_of(path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    return read_rows(data, fmt, max_rows)
