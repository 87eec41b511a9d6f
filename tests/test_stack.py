"""`make stack` as the README gives it: deployments/stack.sh up, twice, then down — on
ports and a state folder of the test's own, with the Prefect server on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import psycopg

from .service import REPO, SPEC, free_port, key, wait_for

STACK = ["bash", str(REPO / "deployments" / "stack.sh")]


def pids(state: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in state.glob("*.pid")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running: it only waits for its parent.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def test_stack_up_is_idempotent_serves_and_comes_down(tmp_path, catalog_url):
    state = tmp_path / "stack"
    prefect_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "MPT_STACK_DIR": str(state),
        "MPT_STACK_PREFECT_PORT": str(prefect_port),
        "MPT_STACK_API_PORT": str(api_port),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"],
        "MPT_DATABASE_URL": catalog_url,  # so Prefect's server runs on PostgreSQL too
    }

    def stack(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*STACK, *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
        )

    try:
        up = stack("up")
        assert up.returncode == 0, up.stdout + up.stderr
        first = pids(state)
        assert set(first) == {"server", "worker-cpu", "worker-gpu", "worker-batch", "api"}
        assert all(alive(pid) for pid in first.values())

        again = stack("up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("already running") == 5
        assert pids(state) == first  # nothing started twice

        api = f"http://127.0.0.1:{api_port}/api/v1"
        health = httpx.get(f"{api}/health", timeout=10)
        assert health.status_code == 200, health.text
        with psycopg.connect(catalog_url) as conn:  # Prefect's own tables, beside the catalog
            assert conn.execute("SELECT to_regclass('public.flow_run')").fetchone()[0]

        # The deployments and the worker the stack made run a request end to end.
        headers = key("creator")
        r = httpx.post(f"{api}/audios", json=SPEC, headers=headers, timeout=30)
        assert r.status_code == 202, r.text
        task = f"{api}/tasks/{r.json()['task_id']}"

        def finished() -> dict | None:
            body = httpx.get(task, headers=headers, timeout=10).json()
            return body if body["state"] in ("completed", "failed", "cancelled") else None

        done = wait_for(finished, timeout_s=180, interval_s=0.5)
        assert done["state"] == "completed", done

        check_run_forms(f"http://127.0.0.1:{prefect_port}", tmp_path)
    finally:
        down = stack("down")
    assert down.returncode == 0, down.stderr
    assert pids(state) == {}
    time.sleep(0.5)
    assert not any(alive(pid) for pid in first.values())


# The form's fields as a person fills it: topic and script first, then the groups of
# `mpt make --help` (frame, footage and cutting, transitions, voice, subtitles, music, mix,
# encode), whatever order PostgreSQL's JSONB gives the stored schema's keys.
FORM_ORDER = [
    "Topic",
    "Script",
    "Language",
    "Aspect ratio",
    "Resolution",
    "Frames per second",
    "Materials folder",
    "Longest cut (s)",
    "Transition between cuts",
    "Voice",
    "Narration file",
    "Subtitles",
    "Font size",
    "Music",
    "Duck music",
    "Loudness (LUFS)",
    "x264 preset",
    "Quality (CRF)",
    "Seed",
]


# The batch deployment's form: the campaign's fields, in their order.
CAMPAIGN_FORM_ORDER = ["Name", "Rows", "Defaults", "Videos at once", "Skip invalid rows"]


def check_run_forms(prefect_url: str, shots: Path) -> None:
    """Every deployment's run form in the Prefect UI itself, in a real browser."""
    from .browser import browser

    deployments = httpx.post(f"{prefect_url}/api/deployments/filter", json={}, timeout=10).json()
    assert {d["name"] for d in deployments} >= {"video", "audio", "subtitles", "batch"}
    stored = deployments[0]["parameter_openapi_schema"]["definitions"]["VideoSpec"]["properties"]
    assert list(stored)[0] != "topic"  # JSONB reorders keys: the form must not follow them
    with browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 1000})
        for d in deployments:
            batch = d["name"] == "batch"
            page.goto(f"{prefect_url}/deployments/deployment/{d['id']}/run")
            page.get_by_text("Skip invalid rows" if batch else "Topic").first.wait_for(
                timeout=30_000
            )
            labels = [
                t.removesuffix(" (Optional)") for t in page.locator("label").all_inner_texts()
            ]
            page.screenshot(path=str(shots / f"run-form-{d['name']}.png"))
            where = [labels.index(name) for name in (CAMPAIGN_FORM_ORDER if batch else FORM_ORDER)]
            assert where == sorted(where), (d["name"], labels)
            first = "campaign" if batch else "spec"
            assert labels[labels.index(first) + 1] == ("Name" if batch else "Topic"), labels
