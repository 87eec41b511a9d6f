"""Real parts for the service tests: a PostgreSQL database of their own, the deployments on
the session's Prefect server, a process worker, and the facade app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("MPT_TEST_POSTGRES_URL", "postgresql://mpt:mpt@127.0.0.1:5432/mpt")
SHORT = "The service renders this. It is a short test."
SPEC = {"script": SHORT, "resolution": "540p", "aspect": "1:1", "fps": 15, "preset": "ultrafast"}


def prefect_api_url() -> str:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "the Prefect test harness is not running"
    return url


@pytest.fixture(scope="session")
def catalog_url() -> Iterator[str]:
    """A fresh database for this session, dropped at the end; its URL is MPT_DATABASE_URL."""
    name = f"mpt_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is needed (make services starts it): {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    previous = os.environ.get("MPT_DATABASE_URL")
    os.environ["MPT_DATABASE_URL"] = url
    from blocks.settings import get_settings

    get_settings.cache_clear()
    from blocks.catalog import migrate

    migrate(url)
    yield url
    if previous is None:
        os.environ.pop("MPT_DATABASE_URL", None)
    else:
        os.environ["MPT_DATABASE_URL"] = previous
    get_settings.cache_clear()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def deployed(catalog_url: str) -> str:
    """Work pools and prefect.yaml's deployments on the session's Prefect server."""
    url = prefect_api_url()
    subprocess.run(
        [sys.executable, "-m", "deployments.setup"],
        env=os.environ | {"PREFECT_API_URL": url},
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return url


def start_worker(pool: str = "cpu", limit: int | None = None, **extra_env: str) -> subprocess.Popen:
    env = (
        os.environ
        | {
            "PREFECT_API_URL": prefect_api_url(),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        | extra_env
    )
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
        + (["--limit", str(limit)] if limit else []),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its flow-run processes go with it at the end
    )


def stop_process_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def cancel_open_runs() -> None:
    """Runs left open by earlier tests must not be picked up by a later one, nor hold the
    deployment's concurrency slots (a run whose worker was stopped mid-run stays Running or
    Cancelling). Called where no worker of this session is running."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    OPEN = [  # noqa: N806
        StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING,
        StateType.PAUSED,
    ]  # fmt: skip

    async def go() -> None:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=OPEN))
                )
            )
            for run in runs:
                await client.set_flow_run_state(run.id, Cancelled(), force=True)

    asyncio.run(go())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def key(role: str, owner: str | None = None) -> dict[str, str]:
    """Headers carrying a new key of `role` for `owner`."""
    from blocks.catalog import create_key

    _, secret = create_key(role, owner or f"{role}-{uuid.uuid4().hex[:6]}")
    return {"X-API-Key": secret}


def wait_for(predicate, timeout_s: float = 120, interval_s: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"not true within {timeout_s} s")


@contextlib.contextmanager
def facade_server(prefect_url: str) -> Iterator[str]:
    """The facade app served over real HTTP on a free port (in a thread of this process)."""
    import threading

    import uvicorn

    from api.rest.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(prefect_api_url=prefect_url), host="127.0.0.1", port=port, log_level="error"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    import httpx

    wait_for(lambda: _answers(httpx, f"{url}/docs"), timeout_s=30, interval_s=0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _answers(httpx, url: str) -> bool:  # noqa: ANN001
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


S3RVER = REPO / ".test-deps" / "node_modules" / "s3rver" / "bin" / "s3rver.js"
S3_BUCKET = "mpt"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[str]:
    """s3rver (npm; a test emulator of the S3 protocol, not a store for real use) on a free
    port with bucket `mpt`; its address. Keys: S3RVER / S3RVER."""
    import shutil

    import httpx

    node = shutil.which("node")
    if node is None or not S3RVER.is_file():
        pytest.fail("s3rver is missing: run deployments/install-test-deps.sh")
    port = free_port()
    data = tmp_path_factory.mktemp("s3rver")
    proc = subprocess.Popen(
        [node, str(S3RVER), "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "-s"]
        + ["--configure-bucket", S3_BUCKET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout_s=30, interval_s=0.1)
        yield url
    finally:
        stop_process_group(proc)


def s3_env(endpoint: str, prefix: str) -> dict[str, str]:
    """The MPT_STORAGE__* variables of S3 storage on the test server under `prefix`."""
    return {
        "MPT_STORAGE__URL": f"s3://{S3_BUCKET}/{prefix}",
        "MPT_STORAGE__ENDPOINT_URL": endpoint,
        "MPT_STORAGE__REGION": "us-east-1",
        "MPT_STORAGE__ACCESS_KEY_ID": "S3RVER",
        "MPT_STORAGE__SECRET_ACCESS_KEY": "S3RVER",
        "MPT_STORAGE__BLOCK": f"mpt-{prefix}",
    }
