"""Benchmark: the cold path of one video against one bare x264 encode, side by side.

Cold means a fresh work dir and a fresh Prefect home: nothing cached, nothing loaded. Each
round runs, in turn:

- `mpt make` of the demo script (1080×1920, music), the real CLI in its own process;
- the floor: one plain x264 encode of the same size, length, preset and CRF (`testsrc2`
  and a sine), in its own process;
- a cached rerun of the same spec with a Prefect server already running (the server
  `mpt make` would otherwise start is started once, before the round, and named by
  PREFECT_API_URL), and a cached rerun with no server (mpt starts its own).

Wall is the child's elapsed time; CPU is user + sys of the child and everything it ran
(ffmpeg, the temporary Prefect server). Prints each run, then the medians and the ratios
the targets are stated in: cold ÷ floor (wall and CPU), cached rerun wall.

    .venv/bin/python bench/cold.py            # three rounds
    .venv/bin/python bench/cold.py --rounds 1
    .venv/bin/python bench/cold.py --before /tmp/base   # also a checkout of another commit
                                                        # (git worktree add /tmp/base REV)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MPT = str(Path(sys.executable).with_name("mpt"))
DEMO = ["make", "--script-file", "resources/demo/script.txt", "--music", "random"]


def timed(
    cmd: list[str], env: dict[str, str], cwd: Path = REPO
) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run `cmd` to the end in `cwd`: (wall s, CPU s of it and its children, the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return wall, cpu, proc


def floor_command(size: tuple[int, int], seconds: float, fps: int, out: Path) -> list[str]:
    from tasks.media import ffmpeg_exe

    w, h = size
    # fmt: off
    return [
        ffmpeg_exe(), "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={fps}:d={seconds:.3f}",
        "-f", "lavfi", "-i", f"sine=f=440:d={seconds:.3f}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart",
        "-f", "mp4", str(out),
    ]
    # fmt: on


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        + ["--port", str(port), "--no-services"],
        env=env | {"PREFECT_UI_ENABLED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("the Prefect server for the warm rerun did not start")


def cold_before(checkout: Path) -> tuple[float, float]:
    """The same cold demo by another checkout's CLI (its code first on the path)."""
    tmp = Path(tempfile.mkdtemp(prefix="mpt-cold-before-"))
    env = os.environ | {
        "MPT_WORK_DIR": str(tmp / "work"),
        "PREFECT_HOME": str(tmp / "prefect"),
        "PYTHONPATH": str(checkout),
    }
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "api.cli", *DEMO, "--out", str(tmp / "out")]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=checkout)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit(f"{checkout} failed: {proc.stderr.strip()[-500:]}")
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def one_round(i: int, before: Path | None) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="mpt-cold-"))
    env = os.environ | {
        "MPT_WORK_DIR": str(tmp / "work"),
        "PREFECT_HOME": str(tmp / "prefect"),
        "MPT_OUTPUT_ROOT": str(tmp / "out"),
    }
    env.pop("PREFECT_API_URL", None)
    try:
        cmd = [MPT, *DEMO, "--out", str(tmp / "out" / "demo"), "--json"]
        wall, cpu, proc = timed(cmd, env)
        manifest = json.loads(proc.stdout)
        stages = " ".join(f"{k}={v['seconds']:.1f}" for k, v in manifest["stages"].items())
        size = (manifest["width"], manifest["height"])
        duration = manifest["duration_s"]
        f_wall, f_cpu, _ = timed(floor_command(size, duration, 30, tmp / "floor.mp4"), env)
        c_wall, _, proc = timed(cmd, env)
        assert all(v["state"] == "Cached" for v in json.loads(proc.stdout)["stages"].values())
        server, url = start_server(env)
        try:
            w_wall, _, proc = timed(cmd, env | {"PREFECT_API_URL": url})  # cache fill there
            w_wall, _, proc = timed(cmd, env | {"PREFECT_API_URL": url})
        finally:
            server.terminate()
            server.wait(timeout=30)
        extra = {}
        if before is not None:
            b_wall, b_cpu = cold_before(before)
            extra = {"before_wall": b_wall, "before_cpu": b_cpu}
            print(f"round {i}: {before}: cold {b_wall:5.1f} s {b_cpu:5.1f} CPU-s", flush=True)
        print(
            f"round {i}: cold {wall:5.1f} s {cpu:5.1f} CPU-s | floor {f_wall:5.1f} s "
            f"{f_cpu:5.1f} CPU-s | cached {c_wall:4.1f} s, with a server "
            f"{w_wall:4.1f} s | {size[0]}x{size[1]} {duration:.1f} s | {stages}",
            flush=True,
        )
        return {
            "cold_wall": wall,
            "cold_cpu": cpu,
            "floor_wall": f_wall,
            "floor_cpu": f_cpu,
            "cached_wall": c_wall,
            "warm_wall": w_wall,
        } | extra
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of another commit to compare")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    rounds = [one_round(i + 1, args.before) for i in range(args.rounds)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(
        f"median: cold {med['cold_wall']:.1f} s / {med['cold_cpu']:.1f} CPU-s, "
        f"floor {med['floor_wall']:.1f} s / {med['floor_cpu']:.1f} CPU-s"
    )
    if args.before is not None:
        print(
            f"{args.before}: cold {med['before_wall']:.1f} s / {med['before_cpu']:.1f} CPU-s = "
            f"{med['before_wall'] / med['floor_wall']:.2f}x / "
            f"{med['before_cpu'] / med['floor_cpu']:.2f}x the floor"
        )
    print(
        f"cold / floor: wall {med['cold_wall'] / med['floor_wall']:.2f}x (target <= 1.5), "
        f"CPU {med['cold_cpu'] / med['floor_cpu']:.2f}x (target <= 1.5)"
    )
    print(
        f"cached rerun: {med['warm_wall']:.2f} s with a running Prefect server (target <= 3 s), "
        f"{med['cached_wall']:.2f} s without = {med['cached_wall'] / med['cold_wall']:.0%} "
        "of cold (target <= 20%)"
    )


if __name__ == "__main__":
    main()
