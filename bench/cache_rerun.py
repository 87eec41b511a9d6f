"""Benchmark: the demo video rendered cold, then rerun from cache, then with new music only.

Each run is the real CLI in its own process, in a fresh work dir, so the figures are what a
user sees. Prints wall seconds per run, per-stage states, and the cached/cold ratio.

    .venv/bin/python bench/cache_rerun.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MPT = str(Path(sys.executable).with_name("mpt"))


def run(label: str, args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run(
        [MPT, *args, "--json"], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{label} failed: {proc.stderr.strip()}")
    manifest = json.loads(proc.stdout)
    ran = [k for k, v in manifest["stages"].items() if v["state"] == "Completed"]
    print(f"{label:<22} {wall:7.2f} s   stages run: {', '.join(ran) or 'none (all cached)'}")
    return wall, manifest


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mpt-bench-"))
    env = os.environ | {"MPT_WORK_DIR": str(tmp / "work"), "PREFECT_HOME": str(tmp / "prefect")}
    env.pop("PREFECT_API_URL", None)
    demo = ["make", "--script-file", "resources/demo/script.txt", "--out", str(tmp / "out")]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    cold, manifest = run("cold (empty cache)", [*demo, "--music", "random"], env)
    warm, _ = run("rerun (same spec)", [*demo, "--music", "random"], env)
    music, _ = run("rerun (music changed)", [*demo, "--music", "none"], env)
    print(f"video: {manifest['width']}x{manifest['height']}, {manifest['duration_s']:.1f} s")
    print(
        f"cached rerun / cold = {warm / cold:.1%}   music-only change / cold = {music / cold:.1%}"
    )


if __name__ == "__main__":
    main()
