"""Benchmark: get_run over streamable HTTP at 20 concurrent MCP sessions.

Starts its own facade and MCP server processes, as `make stack` runs them (a Prefect server
on SQLite, the facade under uvicorn, the MCP server with `--http`), on a catalog database of
its own (PostgreSQL and Redis at 127.0.0.1 as `make services` leaves them). Then 20 clients
(the SDK's own, each its own session) call get_run on a finished run for 20 s after a 2 s
warm-up, and the latencies of the calls are printed: p50, p95, p99, calls per second, errors.

    .venv/bin/python bench/mcp_load.py
    .venv/bin/python bench/mcp_load.py --sessions 20 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ADMIN = "postgresql://mpt:mpt@127.0.0.1:5432/mpt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=REPO,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def session(
    url: str, key: str, task: str, until: float, warm: float, out: list, rate: float | None
) -> int:
    """One MCP session calling get_run until `until`: back to back, or `rate` calls a second
    (an agent polling its task), recording latencies after the warm-up."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    errors = 0
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=30) as hc,
        Client(streamable_http_client(url, http_client=hc)) as client,
    ):
        if rate:  # agents poll out of step with each other, not all in the same instant
            await asyncio.sleep(random.uniform(0, 1 / rate))
        while (now := time.perf_counter()) < until:
            result = await client.call_tool("get_run", {"run_id": task})
            took = time.perf_counter() - now
            if result.is_error:
                errors += 1
            elif now >= warm:
                out.append(took)
            if rate:
                await asyncio.sleep(max(0.0, 1 / rate - took))
    return errors


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--rate",
        type=float,
        default=5,
        help="calls a second per session in the paced phase (the back-to-back phase has none)",
    )
    args = parser.parse_args()
    import psycopg

    from blocks.catalog import create_key, migrate

    name = f"mpt_mcpbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="mpt-mcp-bench-"))
    prefect_port, api_port, mcp_port = free_port(), free_port(), free_port()
    env = os.environ | {
        "PREFECT_HOME": str(tmp / "home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MPT_DATABASE_URL": db,
        "MPT_OUTPUT_ROOT": str(tmp / "out"),
        "MPT_API_URL": f"http://127.0.0.1:{api_port}",
    }
    procs = []
    try:
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                    "--no-services",
                ],
                env,
                tmp / "prefect.log",
            )
        )
        wait_http(f"http://127.0.0.1:{prefect_port}/api/health")
        migrate(db)
        procs.append(
            start(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "api.rest.app:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(api_port),
                    "--log-level",
                    "warning",
                ],
                env,
                tmp / "api.log",
            )
        )
        procs.append(
            start(
                [sys.executable, "-m", "api.mcp.server", "--http", "--port", str(mcp_port)],
                env,
                tmp / "mcp.log",
            )
        )
        wait_http(f"http://127.0.0.1:{api_port}/docs")
        wait_http(f"http://127.0.0.1:{mcp_port}/mcp")
        _, key = create_key("viewer", "bench", db)
        task = uuid.uuid4()
        with psycopg.connect(db, autocommit=True) as conn:  # a finished run to read
            conn.execute(
                "INSERT INTO mpt_catalog.videos (flow_run_id, owner, state, progress, paths) "
                "VALUES (%s, 'bench', 'completed', 100, %s)",
                (task, '{"video": "x/video.mp4"}'),
            )
        url = f"http://127.0.0.1:{mcp_port}/mcp"
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}"
        )
        for label, rate in (("back to back", None), (f"paced at {args.rate:g}/s each", args.rate)):
            latencies: list[float] = []

            async def run(rate: float | None = rate, out: list[float] = latencies) -> list[int]:
                start_t = time.perf_counter()
                until, warm = start_t + 2 + args.seconds, start_t + 2
                return await asyncio.gather(
                    *(
                        session(url, key, str(task), until, warm, out, rate)
                        for _ in range(args.sessions)
                    )
                )

            if os.environ.get("MPT_BENCH_PYSPY") and rate is None:  # profile the MCP server
                subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        *("record", "-p", str(procs[2].pid), "-d", str(int(args.seconds))),
                        *("-f", "raw", "-o", os.environ["MPT_BENCH_PYSPY"]),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            cpu_before = {i: _cpu(p.pid) for i, p in enumerate(procs)}
            self_before = time.process_time()
            errors = sum(asyncio.run(run()))
            cpu = {i: _cpu(p.pid) - cpu_before[i] for i, p in enumerate(procs)}
            q = statistics.quantiles(latencies, n=100)
            print(
                f"get_run over streamable HTTP, {args.sessions} sessions {label}, "
                f"{args.seconds:g} s: {len(latencies)} calls, "
                f"{len(latencies) / args.seconds:.0f} calls/s, p50 {q[49] * 1000:.1f} ms, "
                f"p95 {q[94] * 1000:.1f} ms (target < 50), p99 {q[98] * 1000:.1f} ms, "
                f"{errors} errors"
            )
            print(
                f"  CPU seconds: mcp server {cpu[2]:.1f}, facade {cpu[1]:.1f}, "
                f"prefect {cpu[0]:.1f}, clients (this process) "
                f"{time.process_time() - self_before:.1f}"
            )
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=20)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
