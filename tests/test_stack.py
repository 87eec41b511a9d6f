"""`make stack` as the README gives it, on ports and a state folder of the test's own, with
the Prefect server on PostgreSQL: up (twice), what it serves (the facade, the deployments'
forms in the Prefect UI, the web UI in a real browser), then down.

The tests of this module share one stack (started once: a minute of the suite), in order.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest

from .service import REPO, SPEC, free_port, key, wait_for

STACK = ["bash", str(REPO / "deployments" / "stack.sh")]
SHOTS = REPO / ".test-output" / "screenshots"  # kept after the run, for people to look at


def pids(state: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in state.glob("*.pid")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running: it only waits for its parent.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


@dataclass
class Stack:
    state: Path
    env: dict[str, str]
    prefect: str
    api: str
    ui: str
    mcp: str
    first: dict[str, int]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*STACK, *args], env=self.env, capture_output=True, text=True, timeout=300, cwd=REPO
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory, catalog_url):
    tmp = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("prefect", "api", "ui", "mcp")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "MPT_STACK_DIR": str(tmp / "state"),
        "MPT_STACK_PREFECT_PORT": str(ports["prefect"]),
        "MPT_STACK_API_PORT": str(ports["api"]),
        "MPT_STACK_UI_PORT": str(ports["ui"]),
        "MPT_STACK_MCP_PORT": str(ports["mcp"]),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"],
        "MPT_DATABASE_URL": catalog_url,  # so Prefect's server runs on PostgreSQL too
        "MPT_API__MAX_UPLOAD_MB": "1",  # the browser test uploads a file over the limit
    }
    s = Stack(
        state=tmp / "state",
        env=env,
        prefect=f"http://127.0.0.1:{ports['prefect']}",
        api=f"http://127.0.0.1:{ports['api']}/api/v1",
        ui=f"http://127.0.0.1:{ports['ui']}",
        mcp=f"http://127.0.0.1:{ports['mcp']}/mcp",
        first={},
    )
    up = s.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    s.first = pids(s.state)
    yield s
    s.run("down")  # the last test checks down itself; this only makes sure


def test_stack_up_is_idempotent_and_serves(stack, catalog_url, tmp_path):
    first = stack.first
    assert set(first) == {"server", "worker-cpu", "worker-gpu", "worker-batch", "api", "ui", "mcp"}
    assert all(alive(pid) for pid in first.values())

    again = stack.run("up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 7
    assert pids(stack.state) == first  # nothing started twice

    health = httpx.get(f"{stack.api}/health", timeout=10)
    assert health.status_code == 200, health.text
    with psycopg.connect(catalog_url) as conn:  # Prefect's own tables, beside the catalog
        assert conn.execute("SELECT to_regclass('public.flow_run')").fetchone()[0]

    # The deployments and the worker the stack made run a request end to end.
    headers = key("creator")
    r = httpx.post(f"{stack.api}/audios", json=SPEC, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    task = f"{stack.api}/tasks/{r.json()['task_id']}"

    def finished() -> dict | None:
        body = httpx.get(task, headers=headers, timeout=10).json()
        return body if body["state"] in ("completed", "failed", "cancelled") else None

    done = wait_for(finished, timeout_s=180, interval_s=0.5)
    assert done["state"] == "completed", done

    check_run_forms(stack.prefect, tmp_path)
    check_mcp(stack.mcp, headers)


def check_mcp(url: str, headers: dict[str, str]) -> None:
    """The stack's MCP server answers over streamable HTTP, as the facade's client."""
    import asyncio

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def go() -> set[str]:
        async with (
            httpx2.AsyncClient(headers=headers) as hc,
            Client(streamable_http_client(url, http_client=hc)) as client,
        ):
            voices = await client.call_tool("list_voices", {"provider": "offline"})
            assert not voices.is_error, voices.content
            return {v["id"] for v in voices.structured_content["voices"]}

    assert "piper:en_US-joe-medium" in asyncio.run(go())


def test_the_web_ui_in_a_real_browser(stack):
    """Sign in, make a video from a script, watch it play; bad input is one line; a tampered
    signed URL is refused. Screenshots at 1280×800 and 390×844 stay in .test-output/."""
    from .browser import browser

    SHOTS.mkdir(parents=True, exist_ok=True)
    secret = key("creator", "browser")["X-API-Key"]
    with browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")

        paints, signins = [], []
        for _ in range(10):  # a new session each time: the sign-in page, then Create
            start = time.perf_counter()
            page.goto(stack.ui)
            page.get_by_label("API key", exact=True).wait_for(timeout=30_000)
            paints.append(time.perf_counter() - start)
            page.get_by_label("API key", exact=True).fill(secret)
            start = time.perf_counter()
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Create a video").wait_for(timeout=30_000)
            page.get_by_role("button", name="Generate").wait_for(timeout=30_000)
            signins.append(time.perf_counter() - start)
        print(
            f"\nweb UI: first paint p95 {_p95(paints):.2f} s (of {len(paints)}); "
            f"Create page after sign-in p95 {_p95(signins):.2f} s"
        )
        # The 2 s target is a figure to read (printed above; the suite shares two cores with
        # it), not a timed assertion: this bound only catches a page that hangs.
        assert _p95(signins) < 10.0 and _p95(paints) < 10.0

        page.get_by_label("Frames per second").wait_for(timeout=30_000)  # the form drawn
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "create-form-1280x800.png"))  # the README's picture

        # Bad input: one line on the page, nothing created.
        before = _requests(stack, "POST", "/api/v1/videos")
        script = page.get_by_label("Script", exact=True)
        script.fill("word " * 4001)
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("The script is 20005 characters; the limit is 20000.").wait_for()
        music = page.locator("details").filter(has=page.locator("summary", has_text="Music"))
        music.locator("summary").click()  # open the music group
        music.locator("input[type=file]").set_input_files(
            files=[{"name": "song.txt", "mimeType": "text/plain", "buffer": b"not music"}]
        )
        page.get_by_text("unsupported file type '.txt'").wait_for(timeout=30_000)
        music.locator("input[type=file]").set_input_files(
            files=[{"name": "big.m4a", "mimeType": "audio/mp4", "buffer": b"\0" * (2 * 2**20)}]
        )
        page.get_by_text("big.m4a is larger than 1 MB").wait_for(timeout=30_000)
        assert _requests(stack, "POST", "/api/v1/videos") == before

        # A short video, from Generate to its player.
        script.fill("The browser asks for this. It plays it back.")
        polls = _requests(stack, "GET", "/api/v1/tasks/{task_id}")
        start = time.perf_counter()
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("Done:").first.wait_for(timeout=240_000)
        elapsed = time.perf_counter() - start
        asked = _requests(stack, "GET", "/api/v1/tasks/{task_id}") - polls
        print(
            f"web UI: {asked:.0f} task requests in {elapsed:.1f} s of following "
            f"({asked / elapsed:.2f} a second)"
        )
        assert asked <= elapsed + 1  # one at Generate, then at most one a second
        for stage in ("Narration", "Render", "Publish"):
            assert page.get_by_text(re.compile(rf"check_circle\s*{stage}")).count() >= 1
        video = page.locator("video").first
        video.wait_for(timeout=30_000)
        played = page.evaluate(
            """async (v) => {
                v.muted = true;
                await v.play();
                const t0 = v.currentTime;
                await new Promise(r => setTimeout(r, 1500));
                return {width: v.videoWidth, t0, t1: v.currentTime, src: v.currentSrc};
            }""",
            video.element_handle(),
        )
        assert played["width"] > 0 and played["t1"] > played["t0"], played
        # The signed URL plays without a key; altered, it is refused.
        src = played["src"]
        assert httpx.get(src, headers={"Range": "bytes=0-99"}, timeout=10).status_code == 206
        tampered = re.sub(
            r"signature=(.)", lambda m: f"signature={'B' if m[1] == 'A' else 'A'}", src
        )
        assert httpx.get(tampered, timeout=10).status_code == 403

        # Campaigns: a file with a bad column is refused in one line before anything starts.
        batches = _requests(stack, "POST", "/api/v1/batches")
        page.get_by_role("link", name="Campaigns").click()
        page.get_by_role("heading", name="Campaigns", exact=True).wait_for(timeout=30_000)
        page.locator("input[type=file]").first.set_input_files(
            files=[{"name": "rows.csv", "mimeType": "text/csv", "buffer": b"topic,colour\nx,red\n"}]
        )
        page.get_by_text("rows.csv").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)  # the page reruns once with the file before the click
        page.get_by_role("button", name="Check the rows").click()
        page.get_by_text("unknown column 'colour'").wait_for(timeout=30_000)
        assert _requests(stack, "POST", "/api/v1/batches") == batches

        # Back on Create, the finished video, at a desktop's size and a phone's.
        page.get_by_role("link", name="Create").click()
        page.locator("video").first.wait_for(timeout=30_000)
        page.get_by_text("Done:").first.scroll_into_view_if_needed()
        for width, height in ((1280, 800), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(500)
            page.screenshot(path=str(SHOTS / f"create-{width}x{height}.png"))
        print(f"web UI screenshots: {SHOTS}/create-1280x800.png, create-390x844.png")


def test_the_review_page_swaps_a_storyboard_clip_in_a_real_browser(stack, root):
    """A run waits for its storyboard; on the Review page scene 3 gets its other candidate,
    Render resumes the run, and the finished video shows it and plays on the Runs page."""
    from .browser import browser
    from .test_storyboard_review import RGB, coloured_footage, middle_colour, storyboard_spec

    SHOTS.mkdir(parents=True, exist_ok=True)
    secret = key("creator", "storyboard-browser")["X-API-Key"]
    headers = {"X-API-Key": secret}
    folder = coloured_footage(root / "output" / "footage-browser")
    r = httpx.post(f"{stack.api}/videos", json=storyboard_spec(folder), headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    run = r.json()["task_id"]

    def state() -> dict:
        return httpx.get(f"{stack.api}/tasks/{run}", headers=headers, timeout=10).json()

    wait_for(lambda: state()["state"] == "awaiting_review", timeout_s=240, interval_s=0.5)
    with browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        page.goto(stack.ui)
        page.get_by_label("API key", exact=True).fill(secret)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Create a video").wait_for(timeout=30_000)
        page.get_by_role("link", name="Review").click()
        page.get_by_text("The storyboard of 4 scenes").wait_for(timeout=30_000)
        scene = page.locator(f".st-key-scene-sb-{run}-2")
        scene.get_by_text("Green frogs jump.").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)  # the stills load
        page.screenshot(path=str(SHOTS / "storyboard-review-1280x1000.png"), full_page=True)
        choose = scene.locator("[data-testid=stSelectbox] input").first
        choose.click()
        choose.fill("frogs-pond")  # the list narrows to the other candidate
        page.keyboard.press("Enter")
        scene.get_by_text("2. local: frogs-pond.mp4").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)  # the page reruns with the choice
        page.get_by_role("button", name="Render").click()
        page.get_by_text("Rendering").wait_for(timeout=30_000)
        done = wait_for(
            lambda: (s := state())["state"] in ("completed", "failed") and s, timeout_s=240
        )
        assert done["state"] == "completed", done
        signed = done["signed_urls"]["manifest"]  # absolute: the stack sets its public URL
        manifest = httpx.get(signed, timeout=10).json()
        assert manifest["scenes"][2]["clip"]["name"] == "frogs-pond.mp4"
        video = root / "output" / run / "video.mp4"
        assert np.abs(middle_colour(video, manifest["scenes"][2]) - RGB["purple"]).max() < 30
        # The finished video plays from the Runs page.
        page.get_by_role("link", name="Runs").click()
        page.get_by_text(f"{run[:8]} — completed").first.click()
        player = page.locator("video").first
        player.wait_for(timeout=30_000)
        played = page.evaluate(
            """async (v) => {
                v.muted = true;
                await v.play();
                const t0 = v.currentTime;
                await new Promise(r => setTimeout(r, 1500));
                return {width: v.videoWidth, t0, t1: v.currentTime};
            }""",
            player.element_handle(),
        )
        assert played["width"] > 0 and played["t1"] > played["t0"], played


def test_stack_comes_down(stack):
    down = stack.run("down")
    assert down.returncode == 0, down.stderr
    assert pids(stack.state) == {}
    time.sleep(0.5)
    assert not any(alive(pid) for pid in stack.first.values())


def _p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    )


def _requests(stack: Stack, method: str, route: str) -> float:
    """How many requests the facade has answered on a route (its Prometheus counter)."""
    text = httpx.get(f"{stack.api}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("mpt_http_requests_total{")
            and f'method="{method}"' in line
            and (f'route="{route}"' in line)
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


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
    assert {d["name"] for d in deployments} >= {"video", "audio", "subtitles", "batch", "upscale"}
    assert next(d for d in deployments if d["name"] == "upscale")["work_pool_name"] == "gpu"
    # The upscale deployment's parameters (clips and a model) come from video runs, not a form.
    deployments = [d for d in deployments if d["name"] != "upscale"]
    stored = next(d for d in deployments if d["name"] == "video")
    props = stored["parameter_openapi_schema"]["definitions"]["VideoSpec"]["properties"]
    assert list(props)[0] != "topic"  # JSONB reorders keys: the form must not follow them
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
