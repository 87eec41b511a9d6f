"""`mpt make` as a process: interrupts, what it leaves behind, its logs, its files, its help.

Each test runs the real console script in a process (group) of its own, with a work dir and
Prefect home of its own, so the temporary Prefect server it starts is its own too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest

from blocks.processes import pid_alive

from .service import prefect_api_url, wait_for

REPO = Path(__file__).resolve().parent.parent
MPT = str(Path(sys.executable).with_name("mpt"))
DEMO = ["make", "--script-file", "resources/demo/script.txt", "--resolution", "720p"]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = os.environ | {"MPT_WORK_DIR": str(tmp / "work"), "PREFECT_HOME": str(tmp / "home")}
    env.pop("PREFECT_API_URL", None)  # mpt starts its own temporary server
    return env | extra


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _start_render(tmp: Path) -> tuple[subprocess.Popen, list[int]]:
    """`mpt make` of the demo, returned once its encode is running, with its descendants."""
    proc = subprocess.Popen(
        [MPT, *DEMO, "--out", str(tmp / "out")],
        env=_env(tmp),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group, as a terminal gives a command
    )

    def encoding() -> list[int] | None:
        assert proc.poll() is None, proc.communicate()
        kids = descendants(proc.pid)
        if any("libx264" in cmdline(k) and "-filter_complex" in cmdline(k) for k in kids):
            return kids
        return None

    kids = wait_for(encoding, timeout_s=120, interval_s=0.1)
    time.sleep(0.5)
    return proc, descendants(proc.pid) or kids


@pytest.mark.parametrize("target", ["group", "mpt alone"])
def test_ctrl_c_ends_within_2_s_with_one_line_and_nothing_left(tmp_path, target):
    proc, kids = _start_render(tmp_path)
    assert any("uvicorn" in cmdline(k) for k in kids)  # the temporary Prefect server
    start = time.monotonic()
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 130, err
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert err.splitlines()[-1] == "interrupted", err
    assert "Traceback" not in err and max(len(line) for line in err.splitlines()) < 200
    wait_for(lambda: not any(pid_alive(k) for k in kids), timeout_s=2)


def test_a_killed_mpt_takes_its_server_and_encoder_along_and_leaves_no_part_file(tmp_path):
    proc, kids = _start_render(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    # The temporary server and ffmpeg die with their parent, however it died.
    wait_for(lambda: not any(pid_alive(k) for k in kids), timeout_s=5)
    stages = tmp_path / "work" / "stages"
    left = list(stages.rglob(".*.part*"))
    assert left, "the killed encode left its part file (this is what the next run cleans)"
    done = subprocess.run(
        [MPT, "make", "--script", "Short.", "--resolution", "540p", "--out", str(tmp_path / "o")],
        env=_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not any(p.exists() for p in left)
    assert not list(stages.rglob(".*.part*"))


def test_every_stage_logs_to_its_run_and_the_terminal_stays_quiet(tmp_path):
    """Logs reach the Prefect API (the UI's Logs tab); stderr shows only the stage lines."""
    out = tmp_path / "out"
    env = _env(tmp_path, PREFECT_API_URL=prefect_api_url())
    env.pop("PREFECT_LOGGING_LEVEL", None)  # the CLI's own defaults, as a user has them
    proc = subprocess.run(
        [MPT, "make", "--script", "Logs are kept. Every stage writes.", "--resolution", "540p"]
        + ["--music", "random", "--out", str(out), "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --json: the manifest on stdout, nothing else anywhere
    run_id = UUID(json.loads(proc.stdout)["flow_run_id"])

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def logs() -> list:
        async with get_client() as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))

    records = asyncio.run(logs())
    by_logger = {r.name for r in records if r.level == 20}
    for name in ("tasks.script", "tasks.terms", "tasks.narration", "tasks.storyboard"):
        assert name in by_logger, sorted(by_logger)
    for name in ("tasks.subtitles", "tasks.render", "tasks.publish"):
        assert name in by_logger, sorted(by_logger)
    text = "\n".join(r.message for r in records)
    assert "narration: 2 sentences spoken by piper:en_US-joe-medium" in text
    assert "rendered " in text and "loudness" in text
    assert all(r.task_run_id for r in records if r.name.startswith("tasks.render"))


def test_published_and_stage_files_are_readable_by_others(tmp_path):
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        proc = subprocess.run(
            [MPT, "make", "--script", "Files for everyone.", "--resolution", "540p"]
            + ["--out", str(out)],
            env=_env(tmp_path),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    files = [*out.iterdir(), *(tmp_path / "work" / "stages").rglob("*.*")]
    assert files
    for path in files:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_make_help_groups_its_options_in_panels():
    proc = subprocess.run(
        [MPT, "make", "--help"],
        env=os.environ | {"COLUMNS": "160", "TERM": "dumb"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    panels = [
        "Script",
        "Frame",
        "Footage and cutting",
        "Transitions",
        "Voice",
        "Subtitles",
        "Music",
        "Mix",
        "Encode",
        "Output",
    ]
    starts = {p: proc.stdout.find(f"─ {p} ─") for p in panels}
    assert all(at >= 0 for at in starts.values()), proc.stdout
    assert list(starts.values()) == sorted(starts.values())  # in the order a form is filled

    def panel_of(option: str) -> str:
        at = proc.stdout.find(f" {option} ")
        return max((p for p in panels if starts[p] < at), key=starts.__getitem__)

    assert panel_of("--crf") == "Encode"
    assert panel_of("--subtitles-size") == "Subtitles"
    assert panel_of("--transition-duration") == "Transitions"
    assert panel_of("--music-volume") == "Music"
    assert panel_of("--aspect") == "Frame"
    assert panel_of("--script-file") == "Script"
