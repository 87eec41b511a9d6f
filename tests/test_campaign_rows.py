"""Campaign files: CSV, Parquet and JSON Lines rows, checked before any work."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from blocks.errors import BadInput
from flows.campaign import read_rows
from spec.campaign import Campaign, valid_columns, validate_rows


def csv(text: str) -> bytes:
    return text.encode()


def test_csv_rows_nest_dotted_columns_and_leave_empty_cells_to_the_defaults():
    rows = read_rows(
        csv("topic,script,subtitles.position,crf\n,Hello there.,top,30\nCoffee,,,\n"), "csv"
    )
    assert rows == [
        {"script": "Hello there.", "subtitles": {"position": "top"}, "crf": "30"},
        {"topic": "Coffee"},
    ]
    specs, problems = validate_rows(
        Campaign(name="c", rows=rows, defaults={"crf": 20, "subtitles": {"size": 60}})
    )
    assert problems == []
    first, second = (s for _, s in specs)
    assert first.crf == 30 and first.subtitles.position == "top" and first.subtitles.size == 60
    assert second.crf == 20 and second.subtitles.size == 60


def test_parquet_and_json_lines_rows():
    frame = pl.DataFrame({"script": ["One.", "Two."], "crf": [20, 25]})
    buf = io.BytesIO()
    frame.write_parquet(buf)
    assert read_rows(buf.getvalue(), "parquet") == [
        {"script": "One.", "crf": 20},
        {"script": "Two.", "crf": 25},
    ]
    lines = "\n".join(
        json.dumps(r) for r in [{"script": "A."}, {"script": "B.", "subtitles": {"size": 50}}]
    )
    assert read_rows(lines.encode(), "jsonl") == [
        {"script": "A."},
        {"script": "B.", "subtitles": {"size": 50}},
    ]


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "csv", "the file is empty"),
        (b"   \n", "csv", "the file is empty"),
        (b"topic,script\n", "csv", "the file has a header but no rows"),
        (b"topic,colour\nx,red\n", "csv", "unknown column 'colour'; valid columns: topic, "),
        ("topic\ncaf\xe9\n".encode("latin-1"), "csv", "the file is not UTF-8 text (byte 9)"),
        (b"not parquet at all", "parquet", "cannot read the parquet file"),
        (b"topic\n" + b"x\n" * 11, "csv", "the file has 11 rows; the limit is 10"),
    ],
)
def test_bad_files_are_refused_in_one_line(data, fmt, message):
    with pytest.raises(BadInput) as info:
        read_rows(data, fmt, max_rows=10)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_each_bad_row_is_named_with_its_field():
    rows = read_rows(
        csv("topic,script,crf,subtitles.size\nA,,,\n,,,\n,Hi.,99,\n,Hi.,,500\nB,,,\n"), "csv"
    )
    specs, problems = validate_rows(Campaign(name="c", rows=rows))
    assert [n for n, _ in specs] == [1, 5]
    assert [p.line() for p in problems] == [
        "row 2: give a topic or a script: both are empty",
        "row 3, crf: Input should be less than or equal to 51",
        "row 4, subtitles.size: Input should be less than or equal to 200",
    ]


def test_a_parquet_column_of_the_wrong_type_names_row_and_field():
    frame = pl.DataFrame({"script": ["One.", "Two."], "crf": ["high", "low"]})
    buf = io.BytesIO()
    frame.write_parquet(buf)
    _, problems = validate_rows(Campaign(name="c", rows=read_rows(buf.getvalue(), "parquet")))
    assert [p.line() for p in problems] == [
        "row 1, crf: Input should be a valid integer, unable to parse string as an integer",
        "row 2, crf: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_json_rows_with_an_unknown_field_are_refused_with_the_valid_ones():
    with pytest.raises(BadInput, match="unknown column 'colour'; valid columns: topic, script"):
        validate_rows(Campaign(name="c", rows=[{"script": "Hi.", "colour": "red"}]))
    assert "subtitles.position" in valid_columns() and "crf" in valid_columns()
