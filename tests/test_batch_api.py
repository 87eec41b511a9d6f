"""Batches, review and campaigns through the facade, with real workers of the real pools.

PostgreSQL, Redis and the session's Prefect server are real; so are the process workers:
two of the `cpu` pool (each with an output root of its own, so the test can tell which made
which row) and one of the `batch` pool for campaigns.
"""

from __future__ import annotations

import asyncio
import json
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from .service import (
    SPEC,
    cancel_open_runs,
    key,
    start_worker,
    stop_process_group,
    wait_for,
)

ROW = {k: v for k, v in SPEC.items() if k != "script"}


def _rows(n: int) -> list[dict]:
    return [{"script": f"Row number {i} is short. It ends here."} for i in range(1, n + 1)]


def _prefect(coro_fn):  # noqa: ANN001, ANN202 - a small async runner for client calls
    from prefect.client.orchestration import get_client

    async def go():  # noqa: ANN202
        async with get_client() as client:
            return await coro_fn(client)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def app(deployed):
    from api.rest.app import create_app

    cancel_open_runs()
    with TestClient(create_app(prefect_api_url=deployed)) as client:
        yield client


def test_bad_batches_are_422_in_one_line_and_create_nothing(app, catalog_url):
    import psycopg

    headers = key("creator")

    def batches() -> int:
        with psycopg.connect(catalog_url) as conn:
            return conn.execute("SELECT count(*) FROM mpt_catalog.batches").fetchone()[0]

    before = batches()
    cases = [
        ({"rows": []}, "rows: List should have at least 1 item"),
        ({"rows": [{"script": "Hi.", "colour": "red"}]}, "unknown column 'colour'"),
        ({"rows": [{"script": "Hi."}, {}]}, "1 invalid row(s): row 2: give a topic or a script"),
        ({"rows": [{"script": "Hi.", "crf": 99}]}, "row 1, crf: Input should be less than"),
        ({"rows": [{"script": "Hi.", "music": "/etc/passwd"}]}, "row 1: music must be 'none'"),
        ({"rows": [{"script": "Hi."}], "name": "Bad Name!"}, "name: String should match"),
    ]
    for body, message in cases:
        r = app.post("/api/v1/batches", json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert message in r.json()["detail"] and "\n" not in r.json()["detail"], r.json()
    upload = app.post(
        "/api/v1/batches",
        files={"file": ("rows.csv", "topic\ncafé\n".encode("latin-1"), "text/csv")},
        headers=headers,
    )
    assert upload.status_code == 422 and "not UTF-8 text" in upload.json()["detail"]
    header_only = app.post(
        "/api/v1/batches", files={"file": ("rows.csv", b"topic,script\n")}, headers=headers
    )
    assert header_only.json()["detail"] == "the file has a header but no rows"
    assert batches() == before


def test_too_many_rows_is_422(deployed, settings_env):
    from api.rest.app import create_app

    settings_env(MPT_API__MAX_BATCH_ROWS="3")
    with TestClient(create_app(prefect_api_url=deployed)) as client:
        r = client.post("/api/v1/batches", json={"rows": _rows(4)}, headers=key("creator"))
    assert r.status_code == 422
    assert r.json()["detail"] == "the batch has 4 rows; the limit is 3"


def test_a_batch_spreads_over_two_workers_and_makes_each_row_once(app, tmp_path):
    roots = [tmp_path / "worker-1", tmp_path / "worker-2"]
    workers = [start_worker("cpu", MPT_OUTPUT_ROOT=str(r)) for r in roots]
    try:
        headers = key("creator")
        csv = "script\n" + "".join(f"Row {i} of the batch. It is short.\n" for i in range(6))
        r = app.post(
            "/api/v1/batches",
            files={"file": ("rows.csv", csv.encode(), "text/csv")},
            data={"defaults": json.dumps(ROW), "name": "spread"},
            headers=headers,
        )
        assert r.status_code == 202, r.text
        batch = r.json()["batch_id"]
        assert [i["state"] for i in r.json()["items"]] == ["queued"] * 6

        def done() -> dict | None:
            body = app.get(f"/api/v1/batches/{batch}", headers=headers).json()
            return body if body["counts"].get("completed") == 6 else None

        body = wait_for(done, timeout_s=300, interval_s=1)
    finally:
        for w in workers:
            stop_process_group(w)
    tasks = {i["task_id"] for i in body["items"]}
    made = {root: {p.name for p in root.iterdir() if (p / "video.mp4").is_file()} for root in roots}
    assert all(made[root] for root in roots), made  # both workers took rows
    assert made[roots[0]] | made[roots[1]] == tasks  # every row made
    assert not made[roots[0]] & made[roots[1]]  # and none twice
    listed = app.get("/api/v1/batches", headers=headers).json()
    assert listed["total"] == 1 and listed["items"][0]["batch_id"] == batch


@pytest.fixture(scope="module")
def worker(deployed):
    cancel_open_runs()
    proc = start_worker("cpu")
    yield proc
    stop_process_group(proc)


def test_review_approve_publishes_and_reject_publishes_nothing(app, worker, root):
    headers = key("creator")
    ids = []
    for i in range(2):
        spec = SPEC | {"script": f"Please review video {i}. It waits for you.", "review": True}
        r = app.post("/api/v1/videos", json=spec, headers=headers)
        assert r.status_code == 202, r.text
        ids.append(r.json()["task_id"])

    def awaiting(task: str) -> dict | None:
        body = app.get(f"/api/v1/tasks/{task}", headers=headers).json()
        assert body["state"] not in ("failed", "completed"), body
        return body if body["state"] == "awaiting_review" else None

    approved, rejected = ids
    for task in ids:
        body = wait_for(lambda t=task: awaiting(t), timeout_s=180, interval_s=0.5)
        assert body["urls"]["video"].endswith(f"{task}/preview/video.mp4")
        preview = app.get(body["urls"]["video"], headers=headers)
        assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"

    # The Prefect UI's resume form: the run is suspended with the decision's input schema.
    run = _prefect(lambda c: c.read_flow_run(UUID(approved)))
    assert run.state.type.value == "PAUSED" and run.state.name == "Suspended"
    keyset = run.state.state_details.run_input_keyset
    schema = json.loads(_prefect(lambda c: c.read_flow_run_input(UUID(approved), keyset["schema"])))
    assert set(schema["properties"]) >= {"approved", "note"}

    # Someone else's task is 404; a task not awaiting review is 409.
    other = app.post(
        f"/api/v1/tasks/{approved}/review", json={"approved": True}, headers=key("creator")
    )
    assert other.status_code == 404

    r = app.post(
        f"/api/v1/tasks/{approved}/review", json={"approved": True, "note": "good"}, headers=headers
    )
    assert r.status_code == 202, r.text
    r = app.post(
        f"/api/v1/tasks/{rejected}/review",
        json={"approved": False, "note": "too dark"},
        headers=headers,
    )
    assert r.status_code == 202, r.text

    def ended(task: str) -> dict | None:
        body = app.get(f"/api/v1/tasks/{task}", headers=headers).json()
        return body if body["state"] in ("completed", "rejected", "failed") else None

    yes = wait_for(lambda: ended(approved), timeout_s=180, interval_s=0.5)
    no = wait_for(lambda: ended(rejected), timeout_s=180, interval_s=0.5)
    assert yes["state"] == "completed" and yes["review_note"] == "good"
    assert yes["urls"]["video"] == f"/api/v1/stream/{approved}/video.mp4"
    published = root / "output" / approved
    assert (published / "video.mp4").is_file() and not (published / "preview").exists()
    assert no["state"] == "rejected" and no["review_note"] == "too dark" and no["urls"] == {}
    assert not any((root / "output" / rejected).rglob("*.mp4"))  # nothing published
    again = app.post(f"/api/v1/tasks/{rejected}/review", json={"approved": True}, headers=headers)
    assert (
        again.status_code == 409
        and again.json()["detail"] == "run is rejected, not awaiting review"
    )


def test_campaigns_are_schedules_on_the_batch_deployment_and_their_runs_make_videos(
    app, worker, root
):
    headers = key("creator")
    body = {
        "name": "weekly-coffee",
        "rows": _rows(2),
        "defaults": ROW,
        "schedule": {"cron": "0 9 * * 1", "timezone": "Europe/Paris"},
        "active": False,
    }
    r = app.post("/api/v1/campaigns", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2 and r.json()["active"] is False
    again = app.post("/api/v1/campaigns", json=body, headers=headers)
    assert again.status_code == 409
    bad = app.post(
        "/api/v1/campaigns",
        json=body | {"name": "bad-cron", "schedule": {"cron": "61 * * *"}},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("schedule: ")
    outside = app.post(
        "/api/v1/campaigns",
        json={k: v for k, v in body.items() if k != "rows"} | {"name": "x", "file": "/etc/passwd"},
        headers=headers,
    )
    assert outside.status_code == 422 and "inside the service's storage roots" in outside.text

    # The schedule is on the deployment, with the campaign as its parameters.
    async def schedules(client):  # noqa: ANN001, ANN202
        deployment = await client.read_deployment_by_name("batch/batch")
        return deployment.id, await client.read_deployment_schedules(deployment.id)

    deployment_id, found = _prefect(schedules)
    mine = next(s for s in found if s.slug == "weekly-coffee")
    assert mine.active is False and mine.schedule.cron == "0 9 * * 1"
    assert mine.parameters["campaign"]["rows"] == _rows(2)

    r = app.patch("/api/v1/campaigns/weekly-coffee", json={"active": True}, headers=headers)
    assert r.status_code == 200 and r.json()["active"] is True
    assert [c["name"] for c in app.get("/api/v1/campaigns", headers=headers).json()] == [
        "weekly-coffee"
    ]

    # A run of that schedule (created as the scheduler creates it) makes the videos.
    batch_worker = start_worker("batch")
    try:
        run = _prefect(
            lambda c: c.create_flow_run_from_deployment(deployment_id, parameters=mine.parameters)
        )

        def finished():  # noqa: ANN202
            state = _prefect(lambda c: c.read_flow_run(run.id)).state
            return state if state and state.is_final() else None

        state = wait_for(finished, timeout_s=300, interval_s=1)
    finally:
        stop_process_group(batch_worker)
    assert state.is_completed(), state
    folder = next((root / "output" / "weekly-coffee").iterdir())  # <name>/<date-time>
    assert len(list(folder.glob("*/video.mp4"))) == 2
    report = json.loads((folder / "report.json").read_text())
    assert report["counts"] == {"completed": 2}
    # The run is a batch in the catalog, its rows the campaign owner's tasks.
    batch = app.get(f"/api/v1/batches/{run.id}", headers=headers)
    assert batch.status_code == 200 and batch.json()["counts"] == {"completed": 2}

    assert app.delete("/api/v1/campaigns/weekly-coffee", headers=headers).status_code == 204
    _, left = _prefect(schedules)
    assert "weekly-coffee" not in {s.slug for s in left}
