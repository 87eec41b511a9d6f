"""S3 storage against s3rver (a real server speaking the S3 protocol, from npm): uploads in
parts, presigned URLs with Range, faults classified; the facade redirecting to (or streaming)
objects; two runs with work dirs that share nothing but the Prefect API and the bucket."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

# Imported before any test sets MPT_STORAGE__URL: stages read it when they are decorated,
# and in this process they keep local results (the subprocess tests get S3 results).
import flows.video  # noqa: F401
from blocks.errors import StageError, TransientError

from .service import REPO, free_port, key, prefect_api_url, s3_env

pytestmark = pytest.mark.usefixtures("s3_server")


@pytest.fixture
def s3(s3_server, settings_env):
    """This test's prefix in the bucket, as MPT_STORAGE__* settings."""
    env = s3_env(s3_server, f"t-{uuid.uuid4().hex[:8]}")
    settings_env(**env)
    return env


def test_upload_in_parts_download_and_presigned_range(s3, tmp_path):
    from blocks import storage

    data = os.urandom(20 << 20)  # above the 16 MB part size: a multipart upload
    src = tmp_path / "big.mp4"
    src.write_bytes(data)
    key_ = storage.location().key("x", "big.mp4")
    storage.upload(src, key_, "video/mp4")
    assert storage.head(key_)["ContentLength"] == len(data)
    got = tmp_path / "back.mp4"
    assert storage.download(key_, got) and got.read_bytes() == data
    assert storage.head(storage.location().key("x", "none.mp4")) is None
    assert not storage.download(storage.location().key("x", "none.mp4"), tmp_path / "n")

    url = storage.presign(key_, 60, media_type="video/mp4")
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]


def test_wrong_access_key_fails_at_once_in_one_line(s3, settings_env, tmp_path):
    from blocks import storage

    settings_env(MPT_STORAGE__ACCESS_KEY_ID="NOT-A-KEY")
    src = tmp_path / "a.txt"
    src.write_text("a")
    with pytest.raises(StageError) as err:
        storage.upload(src, storage.location().key("a.txt"))
    assert not isinstance(err.value, TransientError)  # not retried
    assert str(err.value).startswith("storage refused the credentials (InvalidAccessKeyId)")
    assert "\n" not in str(err.value)


def test_unreachable_storage_is_a_transient_fault(s3, settings_env, tmp_path):
    from blocks import storage

    settings_env(MPT_STORAGE__ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")
    src = tmp_path / "a.txt"
    src.write_text("a")
    with pytest.raises(TransientError, match="^storage unreachable during upload of a.txt"):
        storage.upload(src, "a.txt")


class _Busy(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request 503 SlowDown, as S3 does under load."""

    def _answer(self) -> None:
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your rate</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_5xx_is_retried_as_transient_then_fails_naming_storage(s3, settings_env, tmp_path):
    from tasks.publish import upload_stage

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings_env(MPT_STORAGE__ENDPOINT_URL=f"http://127.0.0.1:{server.server_port}")
    src = tmp_path / "video.mp4"
    src.write_bytes(b"x" * 100)
    try:
        state = upload_stage(files=[str(src)], out_dir=str(tmp_path), return_state=True)
    finally:
        server.shutdown()
    assert state.is_failed()
    with pytest.raises(TransientError, match="^storage answered 503 SlowDown during upload"):
        state.result()
    runs = _task_runs("upload")
    assert runs and runs[-1].run_count == 4  # the first try and 3 retries


def _task_runs(name: str) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=name)),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )


# --- the facade ------------------------------------------------------------------------------


@pytest.fixture
def stored(s3, catalog_url, tmp_path):
    """A finished task's video as an object, owned by `s3-owner`."""
    from blocks import storage

    task = uuid.uuid4()
    data = bytes(range(256)) * 40
    src = tmp_path / "video.mp4"
    src.write_bytes(data)
    storage.upload(src, storage.location().key(str(task), "video.mp4"), "video/mp4")
    with psycopg.connect(catalog_url) as conn:
        conn.execute(
            "INSERT INTO mpt_catalog.videos (flow_run_id, owner, state) "
            "VALUES (%s, 's3-owner', 'completed')",
            (task,),
        )
    return task, data


@pytest.fixture
def facade(deployed):
    from api.app import create_app

    with TestClient(create_app(prefect_api_url=deployed), follow_redirects=False) as client:
        yield client


def test_the_facade_redirects_to_presigned_urls_with_range(facade, stored):
    task, data = stored
    headers = key("viewer", "s3-owner")
    r = facade.get(f"/api/v1/stream/{task}/video.mp4", headers=headers)
    assert r.status_code == 307
    part = httpx.get(r.headers["location"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-type"] == "video/mp4"
    d = facade.get(f"/api/v1/download/{task}/video.mp4", headers=headers)
    got = httpx.get(d.headers["location"])
    assert got.content == data
    assert got.headers["content-disposition"] == 'attachment; filename="video.mp4"'
    # The same rules as for files: someone else's, missing, or outside: 404.
    other = key("viewer", "someone-else")
    assert facade.get(f"/api/v1/stream/{task}/video.mp4", headers=other).status_code == 404
    assert facade.get(f"/api/v1/stream/{task}/none.mp4", headers=headers).status_code == 404
    for bad in (
        f"{task}/%2e%2e/{task}/video.mp4",
        f"{task}%5cvideo.mp4",
        f"{task}/video.mp4%00.txt",
        f"%2f{task}/video.mp4",
        f"{task}",
    ):
        assert facade.get(f"/api/v1/stream/{bad}", headers=key("admin")).status_code == 404


def test_the_facade_streams_objects_through_with_proxy(facade, stored, settings_env):
    task, data = stored
    settings_env(MPT_STORAGE__PROXY="true")
    headers = key("viewer", "s3-owner")
    url = f"/api/v1/stream/{task}/video.mp4"
    full = facade.get(url, headers=headers)
    assert full.status_code == 200 and full.content == data
    part = facade.get(url, headers=headers | {"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    bad = facade.get(url, headers=headers | {"Range": f"bytes={len(data) + 5}-"})
    assert bad.status_code == 416


# --- two machines that share only the Prefect API and the bucket -------------------------------

SCRIPT = "Two machines share one bucket. Neither sees the other's disk."


def _mpt_make(env: dict[str, str], out: Path) -> dict:
    args = [sys.executable, "-m", "api.cli", "make", "--script", SCRIPT, "--resolution", "540p"]
    args += ["--aspect", "1:1", "--fps", "15", "--preset", "ultrafast", "--out", str(out)]
    done = subprocess.run(
        [*args, "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_second_machine_reuses_stages_by_fetching_their_files(s3, tmp_path):
    from blocks import storage

    base = os.environ | s3 | {"PREFECT_API_URL": prefect_api_url()}
    machines = [
        base | {"MPT_WORK_DIR": str(tmp_path / f"m{i}" / "work")} | _results(tmp_path / f"m{i}")
        for i in (1, 2)
    ]
    first = _mpt_make(machines[0], tmp_path / "m1" / "out")
    assert {s["state"] for s in first["stages"].values()} == {"Completed"}
    assert first["video"].startswith(f"s3://mpt/{s3['MPT_STORAGE__URL'].split('/', 3)[3]}/")
    # Nothing of the first machine's disk is left for the second to read.
    shutil.rmtree(tmp_path / "m1")
    second = _mpt_make(machines[1], tmp_path / "m2" / "out")
    # Every stage but publish (its folder is new) was found in storage, files and all.
    states = {k: v["state"] for k, v in second["stages"].items() if k != "publish"}
    assert set(states.values()) == {"Cached"}, second["stages"]
    assert (tmp_path / "m2" / "out" / "video.mp4").stat().st_size > 10_000
    assert not (tmp_path / "m2" / "work" / "results").exists()  # results live in the bucket
    narrations = list((tmp_path / "m2" / "work" / "stages" / "narration").rglob("*.wav"))
    assert narrations, "the narration was fetched into the second work dir"
    keys = storage.client().list_objects_v2(Bucket="mpt", Prefix=storage.location().key(""))
    names = {o["Key"].rsplit("/", 1)[-1] for o in keys.get("Contents", [])}
    assert {"video.mp4", "subtitles.srt", "manifest.json"} <= names


def _results(machine: Path) -> dict[str, str]:
    return {"PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(machine / "work" / "results")}
