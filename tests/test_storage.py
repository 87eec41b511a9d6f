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
    from api.rest.app import create_app

    with TestClient(create_app(prefect_api_url=deployed), follow_redirects=False) as client:
        yield client


def test_the_facade_redirects_to_presigned_urls_with_range(facade, stored):
    task, data = stored
    headers = key("viewer", "s3-owner")
    r = facade.get(f"/api/v1/stream/{task}/video.mp4", headers=headers)
    assert r.status_code == 307
    head = facade.head(f"/api/v1/stream/{task}/video.mp4", headers=headers)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
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


# --- two workers that share no disk, a batch through the API, one killed mid-row ---------------


def _engine_pids(worker: int) -> list[int]:
    """The flow-run processes (python -m prefect.engine) a worker started: its descendants."""
    parents, commands = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            commands[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
    found = []
    for pid, command in commands.items():
        up, seen = pid, 0
        while up in parents and up != worker and seen < 50:
            up, seen = parents[up], seen + 1
        if up == worker and pid != worker and b"prefect.engine" in command:
            found.append(pid)
    return found


MID_ROW = {"materials", "subtitles", "render"}


def _flow_run_of(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in env:
        if entry.startswith(b"PREFECT__FLOW_RUN_ID="):
            return entry.split(b"=", 1)[1].decode()
    return None


def test_two_workers_without_a_shared_disk_share_a_batch(s3, deployed, tmp_path):
    import signal

    from api.rest.app import create_app
    from blocks import storage
    from blocks.processes import pid_alive
    from blocks.storage import ensure_result_block

    from .service import SPEC, cancel_open_runs, start_worker, stop_process_group, wait_for

    ensure_result_block()
    cancel_open_runs()
    machines = [tmp_path / f"machine-{i}" for i in (1, 2)]
    envs = [
        s3 | {"MPT_WORK_DIR": str(m / "work"), "MPT_OUTPUT_ROOT": str(m / "out")} | _results(m)
        for m in machines
    ]
    # One row at a time each, as two small machines would take them.
    workers = [start_worker("cpu", limit=1, **env) for env in envs]
    row = {k: v for k, v in SPEC.items() if k != "script"}
    headers = key("creator")
    try:
        with TestClient(create_app(prefect_api_url=deployed), follow_redirects=False) as app:
            csv = "script\n" + "".join(
                f"Machine row {i} goes to S3. It is short.\n" for i in range(6)
            )
            r = app.post(
                "/api/v1/batches",
                files={"file": ("rows.csv", csv.encode(), "text/csv")},
                data={"defaults": json.dumps(row), "name": "no-shared-disk"},
                headers=headers,
            )
            assert r.status_code == 202, r.text
            batch = r.json()["batch_id"]

            # Machine 1 goes down the way systemd or Kubernetes stop one, once it has made a
            # row and is past the narration of another: the worker is frozen (it takes no new
            # row), the run in flight gets SIGTERM (Prefect's engine records it Crashed),
            # then the worker gets SIGTERM too.
            def busy() -> int | None:
                items = app.get(f"/api/v1/batches/{batch}", headers=headers).json()["items"]
                by_task = {i["task_id"]: i for i in items}
                made = any(
                    i["state"] == "completed"
                    and (machines[0] / "out" / i["task_id"] / "video.mp4").is_file()
                    for i in items
                )
                for pid in _engine_pids(workers[0].pid) if made else []:
                    task = _flow_run_of(pid)
                    if task not in by_task:
                        continue
                    now = app.get(f"/api/v1/tasks/{task}", headers=headers).json()
                    if now["state"] == "running" and now.get("stage") in MID_ROW:
                        return pid
                return None

            engine = wait_for(busy, timeout_s=240, interval_s=0.2)
            killed = _flow_run_of(engine)
            os.kill(workers[0].pid, signal.SIGSTOP)
            os.kill(engine, signal.SIGTERM)
            wait_for(lambda: not pid_alive(engine), timeout_s=60)  # a zombie counts as gone
            os.killpg(workers[0].pid, signal.SIGTERM)
            os.kill(workers[0].pid, signal.SIGCONT)
            workers[0].wait(timeout=60)

            def ended() -> dict | None:
                body = app.get(f"/api/v1/batches/{batch}", headers=headers).json()
                final = sum(body["counts"].get(s, 0) for s in ("completed", "failed", "cancelled"))
                return body if final == 6 else None

            try:
                body = wait_for(ended, timeout_s=120, interval_s=1)
            except AssertionError:
                body = app.get(f"/api/v1/batches/{batch}", headers=headers).json()
                from prefect import get_client

                with get_client(sync_client=True) as client:
                    states = [
                        client.read_flow_run(uuid.UUID(i["task_id"])).state.name
                        for i in body["items"]
                    ]
                raise AssertionError(
                    [(i["state"], i["error"], i["task_id"]) for i in body["items"]], states
                ) from None
            completed = {i["task_id"] for i in body["items"] if i["state"] == "completed"}
            lost = [i for i in body["items"] if i["state"] != "completed"]
            # Only the row machine 1 was making is lost, and it says so.
            assert [(i["task_id"], i["state"]) for i in lost] == [(killed, "failed")]

            # That row, made again, is made by machine 2 from what machine 1 had finished.
            for item in lost:
                again = app.post(
                    "/api/v1/videos", json=row | {"script": item["topic"]}, headers=headers
                )
                assert again.status_code == 202, again.text
                task = again.json()["task_id"]
                done = wait_for(
                    lambda t=task: (
                        app.get(f"/api/v1/tasks/{t}", headers=headers).json()["state"]
                        == "completed"
                        or None
                    ),
                    timeout_s=180,
                    interval_s=1,
                )
                assert done
                manifest = _get(app, f"/api/v1/stream/{task}/manifest.json", headers).json()
                finished_before = {"script", "terms", "narration"}
                states = {k: v["state"] for k, v in manifest["stages"].items()}
                assert {states[k] for k in finished_before} == {"Cached"}, states
                completed.add(task)

            made = [{p.parent.name for p in (m / "out").glob("*/video.mp4")} for m in machines]
            assert made[0] and made[1], made  # both machines made rows
            assert not made[0] & made[1]  # none twice
            assert made[0] | made[1] == completed
            for task in completed:  # each from the bucket, through the facade
                video = _get(app, f"/api/v1/stream/{task}/video.mp4", headers)
                assert video.content[4:8] == b"ftyp"
                key_ = storage.location().key(task, "video.mp4")
                assert storage.head(key_)["ContentLength"] == len(video.content)
    finally:
        for w in workers:
            if w.poll() is None:
                stop_process_group(w)


def _get(app: TestClient, url: str, headers: dict) -> httpx.Response:
    r = app.get(url, headers=headers)
    assert r.status_code == 307, (url, r.status_code, r.text[:200])
    got = httpx.get(r.headers["location"])
    assert got.status_code == 200
    return got
