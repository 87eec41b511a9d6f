"""`mpt batch` as a user runs it: a real process, its rows, its report, its exit code."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MPT = str(Path(sys.executable).with_name("mpt"))
FAST = {"resolution": "540p", "aspect": "1:1", "fps": 15, "preset": "ultrafast"}


def mpt_batch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MPT, "batch", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=env or os.environ | {},
    )


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def defaults(tmp_path) -> Path:
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(FAST))
    return path


def test_skip_invalid_makes_the_good_rows_reports_the_bad_one_and_a_rerun_redoes_nothing(
    tmp_path, defaults
):
    rows = write_csv(
        tmp_path / "rows.csv",
        ["topic", "script", "crf", "subtitles.position"],
        [
            ["", "Coffee grows near the equator.", "", "top"],
            ["", "Tea is picked by hand.", "", ""],
            ["", "Cocoa comes from pods.", "99", ""],  # crf out of bounds: row 3 refused
            ["", "Milk foams when it is steamed.", "30", ""],
            ["", "Sugar dissolves in hot water.", "", "center"],
        ],
    )
    out = tmp_path / "out"
    args = [str(rows), "--defaults", str(defaults), "--skip-invalid", "--out", str(out), "--json"]
    first = mpt_batch(*args)
    assert first.returncode == 1, first.stderr
    report = json.loads(first.stdout)  # --json: the report on stdout and nothing else
    assert report["counts"] == {"completed": 4, "invalid": 1}
    bad = [r for r in report["rows"] if r["state"] == "invalid"]
    assert [(r["row"], r["error"]) for r in bad] == [
        (3, "crf: Input should be less than or equal to 51")
    ]
    assert first.stderr.strip().splitlines()[-1].startswith("row 3 invalid: crf: Input should")
    videos = sorted(out.glob("*/video.mp4"))
    assert len(videos) == 4
    with (out / "report.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["state"] for r in table] == ["completed"] * 2 + ["invalid"] + ["completed"] * 2
    assert json.loads((out / "report.json").read_text())["counts"] == report["counts"]

    # A rerun of the same campaign makes nothing again: every stage of every row is cached.
    before = {v: v.stat().st_mtime_ns for v in videos}
    again = mpt_batch(*args)
    assert again.returncode == 1
    for folder in sorted(p.parent for p in videos):
        stages = json.loads((folder / "manifest.json").read_text())["stages"]
        assert {s["state"] for s in stages.values()} == {"Cached"}, folder
    assert {v: v.stat().st_mtime_ns for v in videos} == before


def test_a_row_that_fails_leaves_the_others_done(tmp_path, defaults):
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(b"this is not audio at all" * 100)  # exists, so the row is valid
    rows = write_csv(
        tmp_path / "rows.csv",
        ["script", "music"],
        [["First row works."], ["Second row fails.", str(broken)], ["Third row works."]],
    )
    out = tmp_path / "out"
    proc = mpt_batch(str(rows), "--defaults", str(defaults), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert [r["state"] for r in report["rows"]] == ["completed", "failed", "completed"]
    assert report["rows"][1]["error"].startswith("render stage failed: ")
    assert "row 2 failed: render stage failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(list(out.glob("*/video.mp4"))) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("topic,script\n", "the file has a header but no rows"),
        ("topic,colour\nx,red\n", "unknown column 'colour'; valid columns: topic, script,"),
        ("topic,script\nA,\n,\n", "1 invalid row(s): row 2: give a topic or a script"),
        ("script,crf\nHi.,99\n", "1 invalid row(s): row 1, crf: Input should be less than"),
        ("script,review\nHi.,true\n", "row 1, review: needs the service"),
    ],
)
def test_a_refused_file_is_one_line_exit_2_and_starts_nothing(tmp_path, content, message):
    rows = tmp_path / "rows.csv"
    rows.write_text(content)
    out = tmp_path / "out"
    proc = mpt_batch(str(rows), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()


def test_non_utf8_and_unsupported_files_are_refused(tmp_path):
    latin = tmp_path / "rows.csv"
    latin.write_bytes("topic\ncafé\n".encode("latin-1"))
    proc = mpt_batch(str(latin))
    assert proc.returncode == 2 and "not UTF-8 text" in proc.stderr
    other = tmp_path / "rows.xlsx"
    other.write_bytes(b"PK")
    proc = mpt_batch(str(other))
    assert proc.returncode == 2 and "unsupported file type '.xlsx'" in proc.stderr
