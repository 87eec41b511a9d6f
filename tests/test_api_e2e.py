"""The whole service path with a real process worker: POST → flow run on the `cpu` pool →
catalog → GET /tasks → GET /stream."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from .conftest import media
from .service import SPEC, key, start_worker, stop_process_group, wait_for

ORDER = ["queued", "running", "completed"]
KINDS = ["audios", "subtitles"]


@pytest.fixture(scope="module")
def client(deployed):
    from api.rest.app import create_app

    worker = start_worker("cpu")
    try:
        with TestClient(create_app(prefect_api_url=deployed)) as client:
            yield client
    finally:
        stop_process_group(worker)


def follow(client: TestClient, task: str, headers: dict, timeout_s: float = 300) -> list[dict]:
    """Every distinct answer of GET /tasks/{id} until the task ends."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/tasks/{task}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        if not seen or (body["state"], body["progress"]) != (
            seen[-1]["state"],
            seen[-1]["progress"],
        ):
            seen.append(body)
        if body["state"] in ("completed", "failed", "cancelled"):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"task {task} did not end in {timeout_s} s: {seen[-1:]}")


def test_post_video_renders_and_streams(client, catalog_url):
    headers = key("creator")
    r = client.post("/api/v1/videos", json=SPEC, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    task = r.json()["task_id"]

    seen = follow(client, task, headers)
    states = [s["state"] for s in seen]
    assert states[-1] == "completed", seen[-1]
    assert "running" in states
    assert [ORDER.index(s) for s in states] == sorted(ORDER.index(s) for s in states)
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < p < 100 for p in progress)  # the flow reported stages on the way
    # Once the flow reports progress it is running, whatever Prefect's cached state says.
    assert all(s["state"] != "queued" for s in seen if s["progress"] > 0 or s["stage"]), seen
    done = seen[-1]
    assert done["stage"] == "publish" and done["error"] is None
    assert done["duration_s"] > 2

    url = done["urls"]["video"]
    assert url == f"/api/v1/stream/{task}/video.mp4"
    whole = client.get(url, headers=headers)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    head = client.get(url, headers=headers | {"Range": "bytes=0-1023"})
    assert head.status_code == 206 and head.content == whole.content[:1024]
    assert head.headers["content-range"] == f"bytes 0-1023/{len(whole.content)}"
    rest = client.get(url, headers=headers | {"Range": "bytes=1024-"})
    assert head.content + rest.content == whole.content

    from blocks.settings import get_settings

    video = get_settings().output_root / task / "video.mp4"
    assert video.read_bytes() == whole.content
    info = media(video)
    assert (info["width"], info["height"]) == (540, 540)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    manifest = client.get(done["urls"]["manifest"], headers=headers).json()
    assert manifest["flow_run_id"] == task

    with psycopg.connect(catalog_url) as conn:
        row = conn.execute(
            "SELECT state, paths->>'video', finished_at IS NOT NULL FROM mpt_catalog.videos "
            "WHERE flow_run_id = %s",
            (uuid.UUID(task),),
        ).fetchone()
    assert row == ("completed", f"{task}/video.mp4", True)


def test_audio_and_subtitles_requests_publish_only_their_files(client):
    headers = key("creator")
    runs = [client.post(f"/api/v1/{kind}", json=SPEC, headers=headers) for kind in KINDS]
    assert [r.status_code for r in runs] == [202, 202], [r.text for r in runs]
    audio, subs = (r.json()["task_id"] for r in runs)
    a, s = follow(client, audio, headers)[-1], follow(client, subs, headers)[-1]
    assert a["state"] == s["state"] == "completed", (a, s)
    assert a["kind"] == "audio" and "video" not in a["urls"] and "srt" not in a["urls"]
    wav = client.get(a["urls"]["audio"], headers=headers)
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    srt = client.get(s["urls"]["srt"], headers=headers)
    assert srt.status_code == 200 and "-->" in srt.text
    assert "video" not in s["urls"]


def test_delete_cancels_a_running_render(client):
    headers = key("creator")
    long_spec = SPEC | {
        "script": " ".join(f"Sentence number {i} keeps this render busy." for i in range(40)),
        "resolution": "1080p",
        "preset": "medium",
    }
    task = client.post("/api/v1/videos", json=long_spec, headers=headers).json()["task_id"]
    wait_for(
        lambda: client.get(f"/api/v1/tasks/{task}", headers=headers).json()["state"] == "running",
        timeout_s=120,
    )
    r = client.delete(f"/api/v1/tasks/{task}", headers=headers)
    assert r.status_code == 202, r.text
    final = follow(client, task, headers, timeout_s=120)[-1]
    assert final["state"] == "cancelled"
    assert "video" not in final["urls"]


def test_a_run_that_fails_reports_its_error(client):
    from blocks.settings import get_settings

    headers = key("creator")
    folder = get_settings().output_root / f"materials-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    r = client.post("/api/v1/videos", json=SPEC | {"materials_dir": str(folder)}, headers=headers)
    assert r.status_code == 202, r.text
    folder.rmdir()  # gone before the worker starts the run: its materials stage refuses it
    final = follow(client, r.json()["task_id"], headers)[-1]
    assert final["state"] == "failed"
    assert "materials folder does not exist" in final["error"]
