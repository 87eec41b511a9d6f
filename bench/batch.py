"""Benchmark: a campaign's throughput against what this machine can encode.

A campaign of 12 rows (short scripts, 720p 9:16, the offline voice, procedural backgrounds)
made two ways, each from an empty work dir:

- `mpt batch` on this machine (rows in one process, two at a time);
- the service: `make stack`'s processes on ports of their own (Prefect server on
  PostgreSQL, one `cpu` worker, the facade), rows sent with `POST /api/v1/batches`.

The ceiling, measured in the same run: one bare x264 encode (testsrc2 and a sine, veryfast,
CRF 23) of each row's output size and length; their CPU seconds summed and divided by the
cores is the least time the machine needs to encode the campaign. Prints videos per hour,
throughput ÷ ceiling, and the peak memory (RSS summed over each run's process tree).

    .venv/bin/python bench/batch.py                  # both (needs PostgreSQL and Redis)
    .venv/bin/python bench/batch.py --skip-stack
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MPT = str(Path(sys.executable).with_name("mpt"))
ROWS = 12
DEFAULTS = {"resolution": "720p", "aspect": "9:16", "music": "random"}
SENTENCES = [
    "Coffee grows near the equator",
    "Tea leaves are picked by hand",
    "Cocoa beans ferment in the sun",
    "Milk foams when it is steamed",
    "Honey never spoils in the jar",
    "Bread rises as the yeast works",
]


def scripts() -> list[str]:
    return [
        f"{SENTENCES[i % 6]}. {SENTENCES[(i + 1) % 6]}, and that is row {i + 1}."
        for i in range(ROWS)
    ]


class PeakRSS:
    """The largest sum of RSS over a process tree, sampled every 50 ms."""

    def __init__(self, root_pids: list[int]) -> None:
        import psutil

        self.psutil = psutil
        self.roots = root_pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self.roots:
                try:
                    proc = self.psutil.Process(pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        total += p.memory_info().rss
                except self.psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def ceiling_cpu(videos: list[tuple[int, int, float]]) -> float:
    """CPU seconds of a bare encode of each (width, height, seconds)."""
    from tasks.media import ffmpeg_exe

    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for w, h, seconds in videos:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [ffmpeg_exe(), "-v", "error", "-y"]
                + ["-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r=30:d={seconds:.3f}"]
                + ["-f", "lavfi", "-i", f"sine=f=440:d={seconds:.3f}"]
                + ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
                + ["-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", f"{tmp}/f.mp4"],
                check=True,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            total += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return total


def run_local(
    tmp: Path, extra_env: dict[str, str] | None = None
) -> tuple[float, float, list[tuple[int, int, float]]]:
    """`mpt batch` of the campaign; `extra_env` adds settings (bench/storage.py: S3)."""
    tmp.mkdir(parents=True)
    rows = tmp / "rows.jsonl"
    rows.write_text("".join(json.dumps({"script": s}) + "\n" for s in scripts()))
    defaults = tmp / "defaults.json"
    defaults.write_text(json.dumps(DEFAULTS))
    env = os.environ | {"MPT_WORK_DIR": str(tmp / "work"), "PREFECT_HOME": str(tmp / "home")}
    env |= extra_env or {}
    env.pop("PREFECT_API_URL", None)
    out = tmp / "out"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [MPT, "batch", str(rows), "--defaults", str(defaults), "--out", str(out), "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = PeakRSS([proc.pid])
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    mem = peak.stop()
    if proc.returncode != 0:
        sys.exit(f"mpt batch failed: {stderr[-500:]}")
    report = json.loads(stdout)
    assert report["counts"] == {"completed": ROWS}, report["counts"]
    # The local copies (with S3 storage the report names objects).
    return wall, mem, _sizes(sorted(out.rglob("video.mp4")))


def _sizes(videos: object) -> list[tuple[int, int, float]]:
    from tasks.media import probe

    out = []
    for video in videos:  # type: ignore[attr-defined]
        info = probe(Path(video))
        out.append((info.width, info.height, info.duration_s))
    return out


def run_stack(tmp: Path) -> tuple[float, float, list[tuple[int, int, float]]]:
    tmp.mkdir(parents=True)
    import httpx
    import psycopg

    from blocks.catalog import create_key

    admin = "postgresql://mpt:mpt@127.0.0.1:5432/mpt"
    name = f"mpt_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = admin.rsplit("/", 1)[0] + f"/{name}"
    sock_ports = []
    import socket

    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            sock_ports.append(s.getsockname()[1])
    prefect_port, api_port = sock_ports
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "MPT_STACK_DIR": str(tmp / "stack"),
        "MPT_STACK_PREFECT_PORT": str(prefect_port),
        "MPT_STACK_API_PORT": str(api_port),
        "PREFECT_HOME": str(tmp / "home"),
        "MPT_DATABASE_URL": db,
        "MPT_WORK_DIR": str(tmp / "work"),
        "MPT_OUTPUT_ROOT": str(tmp / "output"),
    }
    stack = ["bash", str(REPO / "deployments" / "stack.sh")]
    try:
        up = subprocess.run([*stack, "up"], env=env, capture_output=True, text=True, cwd=REPO)
        if up.returncode != 0:
            sys.exit(f"make stack failed: {up.stderr[-500:]}")
        os.environ["MPT_DATABASE_URL"] = db
        from blocks.settings import get_settings

        get_settings.cache_clear()
        _, secret = create_key("creator", "bench", db)
        headers = {"X-API-Key": secret}
        api = f"http://127.0.0.1:{api_port}/api/v1"
        pids = [int(p.read_text()) for p in (tmp / "stack").glob("worker-*.pid")]
        pids += [int((tmp / "stack" / "api.pid").read_text())]
        rows = [{"script": s} for s in scripts()]
        start = time.perf_counter()
        peak = PeakRSS(pids)
        r = httpx.post(
            f"{api}/batches",
            json={"rows": rows, "defaults": DEFAULTS, "name": "bench"},
            headers=headers,
            timeout=120,
        )
        if r.status_code != 202:
            sys.exit(f"POST /batches: {r.status_code} {r.text}")
        batch = r.json()["batch_id"]
        while True:
            body = httpx.get(f"{api}/batches/{batch}", headers=headers, timeout=30).json()
            if sum(body["counts"].get(s, 0) for s in ("completed", "failed", "cancelled")) == ROWS:
                break
            time.sleep(0.5)
        wall = time.perf_counter() - start
        mem = peak.stop()
        if body["counts"] != {"completed": ROWS}:
            sys.exit(f"the stack's batch did not complete: {body['counts']}")
        videos = [tmp / "output" / i["task_id"] / "video.mp4" for i in body["items"]]
        return wall, mem, _sizes(videos)
    finally:
        subprocess.run([*stack, "down"], env=env, capture_output=True, cwd=REPO)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-stack", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mpt-bench-batch-") as tmp:
        results["mpt batch"] = run_local(Path(tmp) / "local")
        if not args.skip_stack:
            results["the stack"] = run_stack(Path(tmp) / "stack")
    for label, (wall, mem, sizes) in results.items():
        cpu = ceiling_cpu(sizes)
        floor_s = cpu / cores
        print(
            f"{label:<10} {ROWS} videos ({sum(s[2] for s in sizes):.0f} s of video) in "
            f"{wall:.1f} s = {ROWS * 3600 / wall:.0f} videos/h; ceiling {floor_s:.1f} s "
            f"({cpu:.1f} CPU-s of bare encodes / {cores} cores) = "
            f"{ROWS * 3600 / floor_s:.0f} videos/h; throughput / ceiling = "
            f"{floor_s / wall:.2f}; peak memory {mem:.0f} MB"
        )


if __name__ == "__main__":
    main()
