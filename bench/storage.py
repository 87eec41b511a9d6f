"""Benchmark: S3 storage on loopback against the local disk.

1. A 50 MB video: upload (boto3's managed transfer, in 16 MB parts, as publish does), the
   download a worker makes when it fetches a stage file, and a download of a presigned URL (as
   a browser fetches what the facade redirects to), each in MB/s beside a plain file copy of the
   same file in the same run.
2. With `--batch`: the campaign of bench/batch.py (12 rows through `mpt batch`) with local
   storage and with S3 storage, one after the other: throughput ÷ ceiling for each.

The S3 server is s3rver from .test-deps (a test emulator: production uses S3, MinIO or R2;
its figures say what our client side costs, not what a real store does).

    .venv/bin/python bench/storage.py
    .venv/bin/python bench/storage.py --batch
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
S3RVER = REPO / ".test-deps" / "node_modules" / "s3rver" / "bin" / "s3rver.js"
SIZE_MB = 50


def start_s3rver(data: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    node = shutil.which("node")
    if node is None or not S3RVER.is_file():
        sys.exit("s3rver is missing: bash deployments/install-test-deps.sh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [node, str(S3RVER), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"]
        + ["--configure-bucket", "mpt"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("s3rver did not start")


def s3_env(endpoint: str) -> dict[str, str]:
    return {
        "MPT_STORAGE__URL": f"s3://mpt/bench-{uuid.uuid4().hex[:6]}",
        "MPT_STORAGE__ENDPOINT_URL": endpoint,
        "MPT_STORAGE__REGION": "us-east-1",
        "MPT_STORAGE__ACCESS_KEY_ID": "S3RVER",
        "MPT_STORAGE__SECRET_ACCESS_KEY": "S3RVER",
    }


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fetch(url: str, dest: Path) -> None:
    """What a browser does with the facade's redirect: GET the presigned URL."""
    import httpx

    with httpx.stream("GET", url) as r, dest.open("wb") as fh:
        for chunk in r.iter_bytes(1 << 20):
            fh.write(chunk)


def transfer(tmp: Path, endpoint: str, rounds: int) -> None:
    os.environ.update(s3_env(endpoint))
    from blocks import storage

    src = tmp / "video.mp4"
    src.write_bytes(os.urandom(SIZE_MB << 20))
    key = storage.location().key("bench", "video.mp4")
    rows: dict[str, list[float]] = {"copy": [], "upload": [], "download": [], "presigned": []}
    for i in range(rounds):
        copy_to, down_to, url_to = (tmp / f"{n}-{i}.mp4" for n in ("copy", "down", "url"))
        rows["copy"].append(timed(partial(shutil.copyfile, src, copy_to)))
        rows["upload"].append(timed(partial(storage.upload, src, key, "video/mp4")))
        rows["download"].append(timed(partial(storage.download, key, down_to)))
        rows["presigned"].append(timed(partial(fetch, storage.presign(key, 300), url_to)))
        assert url_to.stat().st_size == src.stat().st_size
    print(f"{SIZE_MB} MB, {rounds} rounds, medians:")
    copy = sorted(rows["copy"])[rounds // 2]
    for name, times in rows.items():
        t = sorted(times)[rounds // 2]
        mbps = SIZE_MB / t
        print(f"  {name:<10} {t:6.3f} s  {mbps:8.1f} MB/s  ({t / copy:5.1f}× the plain copy)")


def batch(tmp: Path, endpoint: str) -> None:
    from batch import ROWS, ceiling_cpu, run_local  # bench/batch.py

    cores = os.cpu_count() or 1
    results = {
        "local disk": run_local(tmp / "local"),
        "S3 storage": run_local(tmp / "s3", s3_env(endpoint)),
    }
    # One ceiling for both (bare encodes of the same sizes): measured once, so the two
    # ratios differ only by what storage costs.
    floor_s = ceiling_cpu(results["local disk"][2]) / cores
    ratios = {}
    for label, (wall, _mem, _sizes) in results.items():
        ratios[label] = floor_s / wall
        print(
            f"  {label:<10} {ROWS} videos in {wall:.1f} s = {ROWS * 3600 / wall:.0f} videos/h; "
            f"throughput / ceiling = {ratios[label]:.2f}"
        )
    drop = 1 - ratios["S3 storage"] / ratios["local disk"]
    print(f"  S3 costs {drop:.1%} of the local-disk throughput (target: under 10 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", action="store_true", help="also the campaign, local vs S3")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="mpt-bench-storage-") as tmp:
        server, endpoint = start_s3rver(Path(tmp) / "s3rver-data")
        try:
            transfer(Path(tmp), endpoint, args.rounds)
            if args.batch:
                batch(Path(tmp), endpoint)
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
