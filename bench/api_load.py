"""Load on the facade: GET /tasks/{id} and GET /health at 50 connections for 20 s each.

Starts what it measures, on loopback: a Prefect server (SQLite, temporary), the facade under
uvicorn (one process, as `make stack` runs it), a database of its own on the local
PostgreSQL, Redis. Prints p50/p95/p99 latency, requests per second and errors per target.

The load comes from a small asyncio HTTP/1.1 keep-alive client in this process (no httpx):
on a 2-core machine a heavier client would spend the CPU the server needs and inflate the
figures it reports.

    .venv/bin/python bench/api_load.py [--seconds 20] [--connections 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ADMIN_URL = os.environ.get("MPT_TEST_POSTGRES_URL", "postgresql://mpt:mpt@127.0.0.1:5432/mpt")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"error: {url} did not answer in {seconds:g} s")


async def one_connection(
    port: int, request: bytes, until: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            status = status_line.split(b" ", 2)[1] if status_line else b"EOF"
            if status != b"200":
                errors.append(status.decode())
    finally:
        writer.close()


async def load(port: int, path: str, headers: dict[str, str], seconds: float, conns: int) -> dict:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()
    # Warm-up: connections, pools and caches, not counted.
    await asyncio.gather(
        *(one_connection(port, request, time.perf_counter() + 1, [], []) for _ in range(conns))
    )
    latencies: list[float] = []
    errors: list[str] = []
    until = time.perf_counter() + seconds
    results = await asyncio.gather(
        *(one_connection(port, request, until, latencies, errors) for _ in range(conns)),
        return_exceptions=True,
    )
    errors += [f"{type(r).__name__}" for r in results if isinstance(r, BaseException)]
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50": q[49] * 1000,
        "p95": q[94] * 1000,
        "p99": q[98] * 1000,
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mpt-bench-api-"))
    db = f"mpt_bench_{os.getpid()}"
    admin = psycopg.connect(ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{db}"')
    db_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{db}"
    prefect_port, api_port = free_port(), free_port()
    prefect_url = f"http://127.0.0.1:{prefect_port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_API_URL": prefect_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MPT_DATABASE_URL": db_url,
        "MPT_OUTPUT_ROOT": str(tmp / "output"),
        "MPT_WORK_DIR": str(tmp / "work"),
    }
    os.environ.update(env)
    bin_dir = Path(sys.executable).parent
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [bin_dir / "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                 str(prefect_port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_http(f"{prefect_url}/health")
        procs.append(
            subprocess.Popen(
                [bin_dir / "uvicorn", "--factory", "api.rest.app:create_app", "--host", "127.0.0.1",
                 "--port", str(api_port), "--log-level", "warning", "--no-access-log"],
                env=env, cwd=REPO, stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{api_port}/docs")

        from blocks.catalog import create_key

        _, secret = create_key("creator", "bench", url=db_url)
        done, queued = uuid.uuid4(), asyncio.run(_queued_run(prefect_url))
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO mpt_catalog.videos (flow_run_id, owner, state, progress, paths) "
                "VALUES (%s, 'bench', 'completed', 100, '{\"video\": \"x/video.mp4\"}'), "
                "(%s, 'bench', 'queued', 0, '{}')",
                (done, queued),
            )
        key = {"X-API-Key": secret}
        targets = [
            ("GET /tasks/{id} (finished: catalog only)", f"/api/v1/tasks/{done}", key),
            ("GET /tasks/{id} (queued: catalog + Prefect)", f"/api/v1/tasks/{queued}", key),
            ("GET /health (PostgreSQL, Redis, Prefect, disk)", "/api/v1/health", {}),
        ]
        print(
            f"{args.connections} connections, {args.seconds:g} s per target, loopback, "
            f"one uvicorn process, {os.cpu_count()} CPUs"
        )
        print(f"{'target':48} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'p99 ms':>7} {'errors':>6}")  # fmt: skip
        for name, path, headers in targets:
            r = asyncio.run(load(api_port, path, headers, args.seconds, args.connections))
            print(
                f"{name:48} {r['requests']:8d} {r['rps']:7.0f} {r['p50']:7.1f} {r['p95']:7.1f} "
                f"{r['p99']:7.1f} {r['errors']:6d}"
            )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def _queued_run(prefect_url: str) -> uuid.UUID:
    """A real, never-started flow run, so the facade asks Prefect for its state."""
    from prefect import flow
    from prefect.client.orchestration import PrefectClient

    @flow(name="bench-queued")
    def idle() -> None:
        pass

    async with PrefectClient(prefect_url) as client:
        run = await client.create_flow_run(idle)
    return run.id


if __name__ == "__main__":
    main()
