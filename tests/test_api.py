"""The facade against real PostgreSQL, Redis and Prefect (no worker here: runs stay queued).

Auth, ownership, limits, rate limits, files and ranges, health and metrics, and what happens
when Redis or Prefect is down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from .service import SPEC, cancel_open_runs, free_port, key, wait_for


@pytest.fixture(scope="module")
def app_client(deployed):
    from api.rest.app import create_app

    with TestClient(create_app(prefect_api_url=deployed)) as client:
        yield client
    cancel_open_runs()


@pytest.fixture
def make_client(deployed, settings_env):
    """A client for an app built under extra MPT_* settings (and maybe another Prefect URL)."""
    from api.rest.app import create_app

    clients = []

    def build(prefect_url: str | None = None, **env: str) -> TestClient:
        settings_env(**env)
        client = TestClient(create_app(prefect_api_url=prefect_url or deployed))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)
    cancel_open_runs()


def rows(catalog_url: str) -> int:
    with psycopg.connect(catalog_url) as conn:
        return conn.execute("SELECT count(*) FROM mpt_catalog.videos").fetchone()[0]


def create(client: TestClient, headers: dict, path: str = "/api/v1/videos", **spec) -> str:
    r = client.post(path, json=SPEC | spec, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["task_id"]


def test_health_is_200_when_everything_answers(app_client):
    r = app_client.get("/api/v1/health")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ok",
        "checks": {"postgres": "ok", "redis": "ok", "prefect": "ok", "storage": "ok"},
        "failed": [],
    }


def test_health_is_503_naming_what_failed(make_client):
    dead = f"http://127.0.0.1:{free_port()}/api"
    client = make_client(dead, MPT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    r = client.get("/api/v1/health")
    assert r.status_code == 503
    body = r.json()
    assert body["failed"] == ["redis", "prefect"]
    assert body["checks"]["postgres"] == "ok" and body["checks"]["storage"] == "ok"


@pytest.mark.parametrize(
    ("role", "method", "path", "expected"),
    [
        (None, "GET", "/api/v1/tasks", 401),
        ("bogus", "GET", "/api/v1/tasks", 401),
        (None, "POST", "/api/v1/videos", 401),
        (None, "GET", "/api/v1/voices", 401),
        ("viewer", "GET", "/api/v1/tasks", 200),
        ("viewer", "GET", "/api/v1/voices", 200),
        ("viewer", "POST", "/api/v1/videos", 403),
        ("viewer", "POST", "/api/v1/audios", 403),
        ("viewer", "POST", "/api/v1/subtitles", 403),
        ("viewer", "DELETE", "/api/v1/tasks/390afe12-bcbb-4f8b-8eba-1c77670919e8", 403),
        ("creator", "GET", "/api/v1/tasks", 200),
        ("creator", "POST", "/api/v1/videos", 202),
        ("creator", "DELETE", "/api/v1/tasks/01b575ba-7505-4c85-8c34-42802d2c23e4", 404),
        ("admin", "POST", "/api/v1/audios", 202),
        ("admin", "GET", "/api/v1/tasks/ca3fa140-a80f-4a09-982b-3621b6d95918", 404),
    ],
)
def test_auth_matrix(app_client, role, method, path, expected):
    if role == "bogus":
        headers = {"X-API-Key": "mpt_nope_" + "x" * 40}
    else:
        headers = key(role) if role else {}
    body = SPEC if method == "POST" else None
    r = app_client.request(method, path, json=body, headers=headers)
    assert r.status_code == expected, r.text
    if expected in (401, 403):
        assert isinstance(r.json()["detail"], str)


def test_bearer_key_is_accepted_and_a_revoked_key_is_not(app_client):
    from blocks.catalog import create_key, revoke_key

    key_id, secret = create_key("viewer", "bearer-owner")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert app_client.get("/api/v1/tasks", headers=bearer).status_code == 200
    assert revoke_key(key_id)
    assert app_client.get("/api/v1/tasks", headers=bearer).status_code == 401


def test_owners_see_only_their_own_tasks(app_client):
    alice, bob = key("creator", "alice"), key("creator", "bob")
    alice_viewer, admin = key("viewer", "alice"), key("admin", "ops")
    task = create(app_client, alice)
    url = f"/api/v1/tasks/{task}"
    assert app_client.get(url, headers=alice).json()["state"] == "queued"
    assert app_client.get(url, headers=alice_viewer).status_code == 200
    assert app_client.get(url, headers=admin).status_code == 200
    assert app_client.get(url, headers=bob).status_code == 404
    assert app_client.delete(url, headers=bob).status_code == 404
    assert task in [
        t["task_id"] for t in app_client.get("/api/v1/tasks", headers=alice).json()["items"]
    ]
    assert task not in [
        t["task_id"] for t in app_client.get("/api/v1/tasks", headers=bob).json()["items"]
    ]
    assert task in [
        t["task_id"]
        for t in app_client.get("/api/v1/tasks?limit=100", headers=admin).json()["items"]
    ]


def test_list_is_paginated_newest_first(app_client):
    owner = key("creator", f"pager-{uuid.uuid4().hex[:6]}")
    made = [create(app_client, owner, "/api/v1/audios") for _ in range(3)]
    page1 = app_client.get("/api/v1/tasks?limit=2&offset=0", headers=owner).json()
    page2 = app_client.get("/api/v1/tasks?limit=2&offset=2", headers=owner).json()
    assert page1["total"] == page2["total"] == 3
    listed = [t["task_id"] for t in page1["items"] + page2["items"]]
    assert listed == made[::-1]
    assert all(t["kind"] == "audio" for t in page1["items"])
    assert app_client.get("/api/v1/tasks?limit=0", headers=owner).status_code == 422


def test_partial_requests_run_their_own_deployments(app_client):
    import asyncio

    from prefect.client.orchestration import get_client

    headers = key("creator")
    ids = {
        kind: create(app_client, headers, f"/api/v1/{path}")
        for kind, path in (("video", "videos"), ("audio", "audios"), ("subtitles", "subtitles"))
    }

    async def read() -> dict:
        async with get_client() as client:
            out = {}
            for kind, task in ids.items():
                run = await client.read_flow_run(uuid.UUID(task))
                deployment = await client.read_deployment(run.deployment_id)
                out[kind] = (deployment.name, run.parameters["output"])
            return out

    assert asyncio.run(read()) == {
        "video": ("video", "video"),
        "audio": ("audio", "audio"),
        "subtitles": ("subtitles", "subtitles"),
    }


def test_cancel_a_queued_task(app_client):
    headers = key("creator")
    task = create(app_client, headers)
    r = app_client.delete(f"/api/v1/tasks/{task}", headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "cancelled"
    got = app_client.get(f"/api/v1/tasks/{task}", headers=headers).json()
    assert got["state"] == "cancelled" and got["finished_at"]
    again = app_client.delete(f"/api/v1/tasks/{task}", headers=headers)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topic": "t" * 301, "script": None}, "topic is 301 characters; the limit is 300"),
        ({"script": "word " * 4001}, "script is 20005 characters; the limit is 20000"),
        ({"video_count": 5}, "video_count is 5; the limit is 3"),
        ({"music": "/etc/passwd"}, "music must be 'none', 'random' or a file in the music"),
        ({"materials_dir": "/etc"}, "materials_dir must be a path inside the service's"),
        ({"audio": "/etc/hostname"}, "audio must be a path inside the service's storage roots"),
        ({"subtitles": {"font": "/etc/passwd"}}, "subtitles.font must be a family name"),
        ({"voice": "robot"}, "voice: unknown voice 'robot'"),
        ({"script": None, "topic": ""}, "give a topic or a script"),
        ({"aspect": "4:3"}, "aspect: Input should be"),
        ({"script": None, "topic": "coffee"}, "no script given and no LLM provider configured"),
    ],
)
def test_bad_requests_are_422_with_one_line_and_create_nothing(
    app_client, catalog_url, change, message
):
    before = rows(catalog_url)
    r = app_client.post("/api/v1/videos", json=SPEC | change, headers=key("creator"))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert message in detail
    assert rows(catalog_url) == before


def test_a_body_over_the_limit_is_422(app_client, catalog_url):
    before = rows(catalog_url)
    body = '{"script": "' + "a" * 70_000 + '"}'
    headers = key("creator") | {"content-type": "application/json"}
    r = app_client.post("/api/v1/videos", content=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"] == "request body is larger than the limit of 65536 bytes"

    def chunks():
        yield body[:1000].encode()
        yield body[1000:].encode()

    r = app_client.post("/api/v1/videos", content=chunks(), headers=headers)  # chunked
    assert r.status_code == 422
    assert rows(catalog_url) == before


def test_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client(MPT_API__RATE_LIMIT_PER_MIN="2")
    headers = key("creator")
    assert [
        client.post("/api/v1/videos", json=SPEC, headers=headers).status_code for _ in range(2)
    ] == [202, 202]
    r = client.post("/api/v1/audios", json=SPEC, headers=headers)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "2 creates per minute" in r.json()["detail"]
    # Limits are per key: another key still may.
    assert client.post("/api/v1/videos", json=SPEC, headers=key("creator")).status_code == 202
    assert "mpt_rate_limited_total 1.0" in client.get("/api/v1/metrics").text


def test_when_redis_is_down_creates_go_ahead_unlimited(make_client):
    client = make_client(
        MPT_API__RATE_LIMIT_PER_MIN="1", MPT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    headers = key("creator")
    codes = [
        client.post("/api/v1/videos", json=SPEC, headers=headers).status_code for _ in range(2)
    ]
    assert codes == [202, 202]
    assert "mpt_rate_limit_unavailable_total 2.0" in client.get("/api/v1/metrics").text
    assert client.get("/api/v1/health").json()["failed"] == ["redis"]


def test_when_prefect_is_down_creates_are_503_and_the_catalog_still_answers(
    app_client, make_client, catalog_url
):
    headers = key("creator", f"o-{uuid.uuid4().hex[:6]}")
    task = create(app_client, headers)
    client = make_client(f"http://127.0.0.1:{free_port()}/api")
    before = rows(catalog_url)
    r = client.post("/api/v1/videos", json=SPEC, headers=headers)
    assert r.status_code == 503
    assert r.json()["detail"] == (
        "the Prefect API is not answering, so no run was created; try again later"
    )
    assert rows(catalog_url) == before
    got = client.get(f"/api/v1/tasks/{task}", headers=headers)
    assert got.status_code == 200 and got.json()["state"] == "queued"
    assert client.get("/api/v1/tasks", headers=headers).json()["total"] == 1
    assert client.delete(f"/api/v1/tasks/{task}", headers=headers).status_code == 503


@pytest.fixture
def published(app_client, catalog_url, root):
    """A finished task's folder under the output root, owned by `files-owner`."""
    from blocks.settings import get_settings

    output_root = get_settings().output_root.resolve()
    task = uuid.uuid4()
    folder = output_root / str(task)
    folder.mkdir(parents=True)
    data = bytes(range(256)) * 40  # 10240 bytes
    (folder / "video.mp4").write_bytes(data)
    outside = root / "secret.txt"
    outside.write_text("not for you")
    (folder / "link.txt").symlink_to(outside)
    with psycopg.connect(catalog_url) as conn:
        conn.execute(
            "INSERT INTO mpt_catalog.videos (flow_run_id, owner, state) VALUES (%s, 'files-owner', "
            "'completed')",
            (task,),
        )
    return task, data


def test_stream_serves_ranges(app_client, published):
    task, data = published
    headers = key("viewer", "files-owner")
    url = f"/api/v1/stream/{task}/video.mp4"
    full = app_client.get(url, headers=headers)
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "video/mp4"
    part = app_client.get(url, headers=headers | {"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = app_client.get(url, headers=headers | {"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == data[-16:]
    bad = app_client.get(url, headers=headers | {"Range": f"bytes={len(data) + 5}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(data)}"
    down = app_client.get(f"/api/v1/download/{task}/video.mp4", headers=headers)
    assert down.status_code == 200 and down.content == data
    assert down.headers["content-disposition"] == 'attachment; filename="video.mp4"'
    # Another owner's file is as missing as a file that is not there.
    assert app_client.get(url, headers=key("admin")).status_code == 200
    assert app_client.get(url, headers=key("viewer", "someone-else")).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "%2e%2e/secret.txt",
        "..%2fsecret.txt",
        "%2e%2e%2fsecret.txt",
        "%252e%252e%252fsecret.txt",
        "..%5csecret.txt",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "{task}/../../secret.txt",
        "{task}/%2e%2e/%2e%2e/secret.txt",
        "{task}/link.txt",
        "{task}/video.mp4%00.txt",
        "{task}",
    ],
)
def test_paths_outside_the_output_root_are_404(app_client, published, path):
    task, _ = published
    for headers in (key("viewer", "files-owner"), key("admin")):
        for route in ("stream", "download"):
            raw = f"/api/v1/{route}/" + path.format(task=task)
            r = app_client.get(raw, headers=headers)
            assert r.status_code == 404, (raw, r.status_code, r.text[:100])
            assert "not for you" not in r.text


def test_voices_lists_offline_voices(app_client):
    r = app_client.get("/api/v1/voices", headers=key("viewer"))
    assert r.status_code == 200
    ids = {v["id"]: v for v in r.json()}
    assert ids["piper:en_US-joe-medium"]["offline"] is True
    assert "edge:*" in ids


def test_metrics_in_prometheus_text_format(app_client):
    headers = key("viewer")
    task = uuid.uuid4()
    app_client.get(f"/api/v1/tasks/{task}", headers=headers)
    r = app_client.get("/api/v1/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert re.search(
        r'mpt_http_requests_total\{method="GET",route="/api/v1/tasks/\{task_id\}",status="404"\}',
        text,
    ), text[:2000]
    assert 'mpt_http_request_duration_seconds_bucket{le="0.05",method="GET"' in text
    assert re.search(r'mpt_runs\{state="queued"\} \d', text)
    assert str(task) not in text  # routes, not ids: a bounded number of series


def test_openapi_is_served_under_docs_without_a_cdn(app_client):
    page = app_client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+\.(?:js|css))['"]""", page.text)
    assert len(assets) == 2 and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert app_client.get(asset).status_code == 200
    paths = app_client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/videos", "/api/v1/tasks/{task_id}", "/api/v1/stream/{file_path}"):
        assert path in paths


def test_keys_cli_prints_a_key_once_and_stores_only_its_hash(catalog_url):
    mpt = str(Path(sys.executable).with_name("mpt"))
    env = os.environ | {"MPT_DATABASE_URL": catalog_url}
    proc = subprocess.run(
        [mpt, "keys", "create", "--role", "creator", "--owner", "cli-owner"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    secret = proc.stdout.strip()
    assert re.fullmatch(r"mpt_[0-9a-f]{8}_[\w-]{43}", secret)
    listed = subprocess.run([mpt, "keys", "list"], capture_output=True, text=True, env=env)
    assert "cli-owner\tcreator" in listed.stdout and secret not in listed.stdout
    with psycopg.connect(catalog_url) as conn:
        stored = conn.execute("SELECT key_hash FROM mpt_catalog.api_keys").fetchall()
    assert all(secret not in row[0] for row in stored)
    bad = subprocess.run(
        [mpt, "keys", "create", "--role", "root"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: unknown role 'root'; valid roles: viewer, creator, admin"
    down = subprocess.run(
        [mpt, "keys", "list"],
        capture_output=True,
        text=True,
        env=env | {"MPT_DATABASE_URL": f"postgresql://mpt:mpt@127.0.0.1:{free_port()}/x"},
    )
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1
    assert down.stderr.startswith("error: catalog unavailable at postgresql://")


@pytest.mark.parametrize(
    ("final", "expected"),
    [("COMPLETED", "completed"), ("CRASHED", "failed"), ("CANCELLED", "cancelled")],
)
def test_a_final_state_learnt_from_prefect_is_written_back(
    app_client, catalog_url, final, expected
):
    """A run whose flow could not report its end (killed, or its catalog was down)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import State

    from blocks.settings import get_settings

    headers = key("creator")
    task = create(app_client, headers)
    folder = get_settings().output_root / task
    folder.mkdir(parents=True)
    for name in ("video.mp4", "video-2.mp4", "subtitles.srt", "subtitles.ass", "manifest.json"):
        (folder / name).write_text("x")

    async def finish() -> None:
        async with get_client() as client:
            state = State(type=StateType[final], message=f"{final.lower()} by the test")
            await client.set_flow_run_state(uuid.UUID(task), state, force=True)

    asyncio.run(finish())
    got = wait_for(
        lambda: (
            (b := app_client.get(f"/api/v1/tasks/{task}", headers=headers).json())["state"]
            == expected
            and b
        ),
        timeout_s=15,
    )
    with psycopg.connect(catalog_url) as conn:
        state, finished = conn.execute(
            "SELECT state, finished_at IS NOT NULL FROM mpt_catalog.videos WHERE flow_run_id = %s",
            (uuid.UUID(task),),
        ).fetchone()
    assert (state, finished) == (expected, True)
    if expected == "completed":
        assert got["progress"] == 100
        assert got["urls"]["video"] == f"/api/v1/stream/{task}/video.mp4"
        assert {"video_2", "srt", "ass", "manifest"} <= set(got["urls"])
    else:
        assert got["urls"] == {}
    if expected == "failed":
        assert got["error"] == "crashed by the test"


def test_migrations_apply_once_even_when_processes_start_together(catalog_url):
    from concurrent.futures import ThreadPoolExecutor

    from blocks.catalog import MIGRATIONS, migrate

    from .service import ADMIN_URL

    name = f"mpt_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
            with ThreadPoolExecutor(4) as pool:
                applied = list(pool.map(lambda _: migrate(url), range(4)))
            files = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
            assert sorted(applied, key=len) == [[], [], [], files]
            assert migrate(url) == []
            with psycopg.connect(url) as conn:
                rows = conn.execute(
                    "SELECT name FROM mpt_catalog.schema_migrations ORDER BY name"
                ).fetchall()
            assert [r[0] for r in rows] == files
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_repeated_idempotency_key_returns_the_first_task(app_client, catalog_url):
    headers = key("creator", f"retry-{uuid.uuid4().hex[:6]}")
    first = app_client.post(
        "/api/v1/videos", json=SPEC, headers=headers | {"Idempotency-Key": "a1"}
    )
    again = app_client.post(
        "/api/v1/videos", json=SPEC, headers=headers | {"Idempotency-Key": "a1"}
    )
    other = app_client.post(
        "/api/v1/videos", json=SPEC, headers=headers | {"Idempotency-Key": "b2"}
    )
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["task_id"] == first.json()["task_id"] != other.json()["task_id"]
    assert app_client.get("/api/v1/tasks", headers=headers).json()["total"] == 2
    # The same key from another owner is another request.
    stranger = app_client.post(
        "/api/v1/videos", json=SPEC, headers=key("creator") | {"Idempotency-Key": "a1"}
    )
    assert stranger.json()["task_id"] != first.json()["task_id"]
    # No owner name can forge another owner's key ("a:b" + "c" is not "a" + "b:c").
    tag = uuid.uuid4().hex[:6]
    one = app_client.post(
        "/api/v1/videos", json=SPEC, headers=key("creator", f"{tag}:b") | {"Idempotency-Key": "c"}
    )
    two = app_client.post(
        "/api/v1/videos", json=SPEC, headers=key("creator", tag) | {"Idempotency-Key": "b:c"}
    )
    assert two.status_code == 202 and one.json()["task_id"] != two.json()["task_id"]
    bad = app_client.post("/api/v1/videos", json=SPEC, headers=headers | {"Idempotency-Key": "x y"})
    assert bad.status_code == 422


def test_list_filters_by_state(app_client):
    headers = key("creator", f"states-{uuid.uuid4().hex[:6]}")
    kept, cancelled = create(app_client, headers), create(app_client, headers)
    assert app_client.delete(f"/api/v1/tasks/{cancelled}", headers=headers).status_code == 202
    listed = app_client.get("/api/v1/tasks?state=cancelled", headers=headers).json()
    assert [t["task_id"] for t in listed["items"]] == [cancelled] and listed["total"] == 1
    queued = app_client.get("/api/v1/tasks?state=queued", headers=headers).json()
    assert [t["task_id"] for t in queued["items"]] == [kept]
    assert app_client.get("/api/v1/tasks?state=lost", headers=headers).status_code == 422


def test_head_answers_like_get_without_a_body(app_client, published):
    task, data = published
    r = app_client.head(f"/api/v1/stream/{task}/video.mp4", headers=key("viewer", "files-owner"))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["accept-ranges"] == "bytes"


def test_a_nul_character_is_refused_before_anything_is_created(app_client, catalog_url):
    # Found by schemathesis: PostgreSQL cannot store it, so the catalog insert failed after
    # the run had been created.
    before = rows(catalog_url)
    r = app_client.post(
        "/api/v1/videos", json=SPEC | {"script": "Hi\x00 there."}, headers=key("creator")
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "the request contains a NUL character (\\u0000)"
    assert rows(catalog_url) == before


def test_a_path_too_long_for_the_file_system_is_404(app_client):
    # Found by schemathesis: realpath raised ENAMETOOLONG and the request answered 500.
    r = app_client.get("/api/v1/download/" + "é" * 300, headers=key("admin"))
    assert r.status_code == 404


def test_runs_that_end_unseen_are_brought_up_to_date_in_the_background(make_client, catalog_url):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    client = make_client(MPT_API__RECONCILE_EVERY_S="0.3")
    task = create(client, key("creator"))

    async def crash() -> None:
        async with get_client() as prefect:
            await prefect.set_flow_run_state(
                uuid.UUID(task), Crashed(message="worker lost"), force=True
            )

    asyncio.run(crash())

    def row_state() -> tuple | None:
        with psycopg.connect(catalog_url) as conn:
            row = conn.execute(
                "SELECT state, error FROM mpt_catalog.videos WHERE flow_run_id = %s",
                (uuid.UUID(task),),
            ).fetchone()
        return row if row[0] != "queued" else None

    assert wait_for(row_state, timeout_s=15) == ("failed", "worker lost")  # nobody read it
    metrics = client.get("/api/v1/metrics").text
    assert re.search(r'mpt_runs\{state="failed"\} [1-9]', metrics)


@pytest.mark.parametrize("field", ["music", "audio", "materials_dir"])
def test_a_path_too_long_inside_the_roots_is_422(app_client, field):
    from blocks.settings import get_settings

    long_path = str(get_settings().output_root.resolve() / ("a" * 300) / "b.mp3")
    r = app_client.post("/api/v1/videos", json=SPEC | {field: long_path}, headers=key("creator"))
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]


def test_signed_urls_serve_their_file_without_a_key_until_altered_or_expired(
    app_client, published, catalog_url
):
    from api.rest.signing import Signer

    task, data = published
    with psycopg.connect(catalog_url) as conn:
        conn.execute(
            "UPDATE mpt_catalog.videos SET paths = %s WHERE flow_run_id = %s",
            (json.dumps({"video": f"{task}/video.mp4"}), task),
        )
    body = app_client.get(f"/api/v1/tasks/{task}", headers=key("viewer", "files-owner")).json()
    url = body["signed_urls"]["video"]
    assert url.startswith(f"/api/v1/signed/{task}/video.mp4?expires=")
    part = app_client.get(url, headers={"Range": "bytes=10-19"})  # no key: the URL is the key
    assert part.status_code == 206 and part.content == data[10:20]
    assert (
        app_client.get(url + "&download=1").headers["content-disposition"].startswith("attachment")
    )
    altered = url[:-1] + ("A" if url[-1] != "A" else "B")
    assert app_client.get(altered).status_code == 403
    other = url.replace("video.mp4", "link.txt")  # the signature is for one file only
    assert app_client.get(other).status_code == 403
    expired = re.sub(r"expires=\d+", "expires=1000", url)
    assert app_client.get(expired).json() == {"detail": "this link has expired or was altered"}
    signer = Signer(b"k" * 32, ttl_s=60)
    expires, signature = signer.sign("a/b.mp4", now=1_000)
    assert signer.valid("a/b.mp4", expires, signature, now=1_059)
    assert not signer.valid("a/b.mp4", expires, signature, now=1_061)
