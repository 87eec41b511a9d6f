"""Reviewing a storyboard through the service: the run suspends once its footage is chosen,
`GET /tasks/{id}/storyboard` shows each scene (signed stills), `PUT` swaps scene 3's clip
for another candidate and resumes the run; the video's third scene shows the new clip, and
the stages before the footage are Cached. A real worker of the `cpu` pool makes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from .conftest import frame_at, make_video
from .service import SPEC, cancel_open_runs, key, start_worker, stop_process_group, wait_for

SCRIPT = "Red foxes run. Blue whales swim. Green frogs jump. Yellow bees fly."
# Scene 3 ("Green frogs jump.") matches two files: the green one by two words, the purple one
# by one; the others match one file each.
FILES = {
    "foxes-red.mp4": "red",
    "whales-blue.mp4": "blue",
    "frogs-green.mp4": "green",
    "frogs-pond.mp4": "purple",
    "bees-yellow.mp4": "yellow",
}
RGB = {"green": (0, 128, 0), "purple": (128, 0, 128)}


def coloured_footage(folder: Path) -> Path:
    for name, colour in FILES.items():
        make_video(folder / name, "540x540", 4, source=f"color=c={colour}")
    return folder


def storyboard_spec(folder: Path) -> dict:
    return SPEC | {
        "script": SCRIPT,
        "materials_dir": str(folder),
        "review_storyboard": True,
        "subtitles": {"enabled": False},
        "concat": "sequential",
    }


def middle_colour(video: Path, scene: dict) -> np.ndarray:
    frame = frame_at(video, (scene["start_s"] + scene["end_s"]) / 2).astype(int)
    return np.median(frame.reshape(-1, 3), axis=0)


@pytest.fixture(scope="module")
def app(deployed):
    from api.rest.app import create_app

    cancel_open_runs()
    worker = start_worker("cpu")
    try:
        with TestClient(create_app(prefect_api_url=deployed)) as client:
            yield client
    finally:
        stop_process_group(worker)


def test_a_storyboard_is_reviewed_and_scene_3_swapped_before_the_render(app, root):
    folder = coloured_footage(root / "output" / "footage-storyboard")
    headers = key("creator", "storyboarder")
    r = app.post("/api/v1/videos", json=storyboard_spec(folder), headers=headers)
    assert r.status_code == 202, r.text
    run = r.json()["task_id"]

    last: list[dict] = []

    def waiting() -> dict | None:
        body = app.get(f"/api/v1/tasks/{run}", headers=headers).json()
        assert body["state"] not in ("failed", "completed"), body
        last[:] = [body]
        return body if body["state"] == "awaiting_review" else None

    try:
        body = wait_for(waiting, timeout_s=240, interval_s=0.5)
    except AssertionError:
        raise AssertionError(f"the run did not stop for review: {last}") from None
    assert body["stage"] == "storyboard"
    board = app.get(f"/api/v1/tasks/{run}/storyboard", headers=headers).json()
    assert board["editable"] and len(board["scenes"]) == 4
    third = board["scenes"][2]
    assert third["text"] == "Green frogs jump."
    assert [c["name"] for c in third["candidates"]] == ["frogs-green.mp4", "frogs-pond.mp4"]
    assert third["clip"]["name"] == "frogs-green.mp4" and "frogs" in third["reason"]
    still = app.get(third["candidates"][1]["thumbnail"])  # signed: no key needed
    assert still.status_code == 200 and still.content[:2] == b"\xff\xd8"  # a JPEG
    # The other review's door is shut; a scene or a candidate that is not there is 422.
    other = app.post(f"/api/v1/tasks/{run}/review", json={"approved": True}, headers=headers)
    assert other.status_code == 409 and "storyboard" in other.json()["detail"]
    bad = app.put(
        f"/api/v1/tasks/{run}/storyboard",
        json={"scenes": [{"index": 2, "candidate": 5}]},
        headers=headers,
    )
    assert bad.status_code == 422 and "has 2 candidates" in bad.json()["detail"]
    assert (
        app.put(
            f"/api/v1/tasks/{run}/storyboard", json={"scenes": [{"index": 9}]}, headers=headers
        ).status_code
        == 422
    )

    swap = app.put(
        f"/api/v1/tasks/{run}/storyboard",
        json={"scenes": [{"index": 2, "candidate": 1}]},
        headers=headers,
    )
    assert swap.status_code == 202, swap.text

    def finished() -> dict | None:
        body = app.get(f"/api/v1/tasks/{run}", headers=headers).json()
        return body if body["state"] in ("completed", "failed", "cancelled") else None

    done = wait_for(finished, timeout_s=240, interval_s=0.5)
    assert done["state"] == "completed", done
    manifest = app.get(done["urls"]["manifest"], headers=headers).json()
    stages = {name: s["state"] for name, s in manifest["stages"].items()}
    assert stages["script"] == stages["narration"] == stages["terms"] == "Cached", stages
    scenes = manifest["scenes"]
    assert scenes[2]["clip"]["name"] == "frogs-pond.mp4"
    assert scenes[2]["reason"].startswith("local file")
    video = Path(root / "output" / run / "video.mp4")
    assert np.abs(middle_colour(video, scenes[2]) - RGB["purple"]).max() < 30
    assert np.abs(middle_colour(video, scenes[0]) - (255, 0, 0)).max() < 40
    final = app.get(f"/api/v1/tasks/{run}/storyboard", headers=headers).json()
    assert not final["editable"] and final["scenes"][2]["clip"]["name"] == "frogs-pond.mp4"
