"""`mpt` as a user runs it: a real process, its exit code, stdout and stderr."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import frame_at, media

REPO = Path(__file__).resolve().parent.parent
MPT = [str(Path(sys.executable).with_name("mpt"))]  # the console script users run


def mpt(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*MPT, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_voices_lists_offline_voices():
    proc = mpt("voices")
    assert proc.returncode == 0
    assert "piper:en_US-joe-medium" in proc.stdout.split()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["make"], "give a topic or a script"),
        (["make", "--script", "  ... !!! "], "no words to speak"),
        (["make", "--script", "hi", "--voice", "robot"], "unknown voice 'robot'; valid voices:"),
        (["make", "--script", "hi", "--music", "/no/such.mp3"], "music file not found"),
        # A name too long for the file system once raised OSError through the validator.
        (["make", "--script", "hi", "--music", f"/tmp/{'a' * 300}.mp3"], "music file not found"),
        (
            ["make", "--script", "hi", "--materials-dir", f"/tmp/{'m' * 300}"],
            "materials folder does",
        ),
        (["make", "--script", "hi", "--aspect", "4:3"], "aspect"),
        (
            ["make", "--script", "hi", "--materials-dir", "/no/such/dir"],
            "materials folder does not",
        ),
        (["make", "coffee"], "no script given and no LLM provider configured"),
        (["make", "--script-file", "/no/such/script.txt"], "cannot read script file"),
        (["make", "--audio", "/no/such/narration.m4a"], "audio file not found"),
        (["make", "--script", "word " * 5000], "the limit is 2000"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    proc = mpt(*args, "--out", str(out), timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not out.exists()


def test_json_prints_only_the_manifest(tmp_path):
    out = tmp_path / "out"
    proc = mpt(
        "make",
        "--script",
        "Crème brûlée is a French dessert. 咖啡很好喝。",
        "--resolution",
        "540p",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == json.loads((out / "manifest.json").read_text())
    assert printed["language"] == "en"
    assert len(printed["sentences"]) == 2


@pytest.mark.slow
def test_demo_renders_full_size_with_burned_subtitles_then_reruns_from_cache(tmp_path):
    demo = ["make", "--script-file", "resources/demo/script.txt", "--music", "random"]
    out = tmp_path / "demo"
    first = mpt(*demo, "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr
    manifest = json.loads(first.stdout)
    info = media(out / "video.mp4")
    assert (info["width"], info["height"]) == (1080, 1920)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    assert abs(info["duration"] - manifest["narration_s"]) < 0.3

    bare = mpt(*demo, "--no-subtitles", "--out", str(tmp_path / "bare"), "--json")
    assert bare.returncode == 0, bare.stderr
    states = {k: v["state"] for k, v in json.loads(bare.stdout)["stages"].items()}
    assert {k for k, v in states.items() if v == "Completed"} == {"render", "publish"}
    cue = manifest["sentences"][1]
    t = (cue["start_s"] + cue["end_s"]) / 2
    shots = REPO / ".test-output" / "screenshots"  # a frame for the README (make docs-images)
    shots.mkdir(parents=True, exist_ok=True)
    frame = Image.fromarray(frame_at(out / "video.mp4", t)).resize((540, 960))
    frame.save(shots / "demo-frame.jpg", quality=85)
    a = frame_at(out / "video.mp4", t).astype(int)
    b = frame_at(tmp_path / "bare" / "video.mp4", t).astype(int)
    bottom = np.abs(a[1300:] - b[1300:]).mean()
    top = np.abs(a[:700] - b[:700]).mean()
    assert bottom > 5 * max(top, 0.5), (bottom, top)

    again = mpt(*demo, "--out", str(out), "--json")
    assert again.returncode == 0
    states = {k: v["state"] for k, v in json.loads(again.stdout)["stages"].items()}
    assert set(states.values()) == {"Cached"}


def test_a_catalog_that_does_not_answer_never_disturbs_a_cli_render(tmp_path, monkeypatch):
    from .service import free_port

    monkeypatch.setenv("MPT_DATABASE_URL", f"postgresql://mpt:mpt@127.0.0.1:{free_port()}/x")
    out = tmp_path / "out"
    proc = mpt("make", "--script", "A short check.", "--resolution", "540p", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "catalog not updated" not in proc.stderr and "warning" not in proc.stderr.lower()
    assert (out / "video.mp4").is_file()
