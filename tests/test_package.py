"""`pip install .` (not editable) gives a working mpt, facade, web UI and MCP server: the wheel is
built from the checkout's files as a clean clone has them, installed into a fresh virtualenv,
and each program is run from a folder that holds no source. Nothing is downloaded: the
fresh environment sees the project's dependencies through a path file (no editable
install of ours comes with them)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest

from .conftest import media
from .service import REPO, free_port, prefect_api_url, wait_for


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the project's wheel installed; its bin folder."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp / "dist").glob("moneyprinterturbo_plus-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies, as plain paths: a .pth line only extends sys.path (the path files
    # there, our editable install's among them, are not read).
    Path(purelib, "mpt-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working folder with no source in it, and no source on the path."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    run = tmp_path / "run"
    run.mkdir()
    return run


def _env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return env | extra


def test_the_installed_mpt_makes_a_video_offline(installed, elsewhere):
    where = subprocess.run(
        [str(installed / "python"), "-c", "import api, resources; print(api.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(REPO) not in where and "site-packages" in where  # the installed copy
    version = subprocess.run([str(installed / "mpt"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("mpt 0.1"), version
    out = elsewhere / "out"
    made = subprocess.run(
        [str(installed / "mpt"), "make", "--script", "An installed copy makes this. It is short."]
        + ["--resolution", "540p", "--aspect", "1:1", "--fps", "15", "--preset", "ultrafast"]
        + ["--music", "random", "--out", str(out), "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert made.returncode == 0, made.stderr[-2000:]
    manifest = json.loads(made.stdout)
    assert media(out / "video.mp4")["video_codec"] == "h264"
    assert "site-packages/resources/music" in manifest["music"]  # the packaged library


def test_the_installed_facade_web_ui_and_mcp_server_answer(installed, elsewhere, catalog_url):
    api_port, ui_port = free_port(), free_port()
    env = _env(PREFECT_API_URL=prefect_api_url(), MPT_DATABASE_URL=catalog_url)
    procs = [
        subprocess.Popen(
            [str(installed / "mpt"), "serve", "--port", str(api_port)],
            cwd=elsewhere,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [str(installed / "mpt"), "ui", "--port", str(ui_port)],
            cwd=elsewhere,
            env=env | {"MPT_WEBUI__API_URL": f"http://127.0.0.1:{api_port}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:

        def answers(url: str) -> httpx.Response | None:
            try:
                return httpx.get(url, timeout=2)
            except httpx.HTTPError:
                return None

        health = wait_for(lambda: answers(f"http://127.0.0.1:{api_port}/api/v1/health"), 60)
        assert health.status_code == 200, health.text
        assert set(health.json()["checks"]) == {"postgres", "redis", "prefect", "storage"}
        ui = wait_for(lambda: answers(f"http://127.0.0.1:{ui_port}/_stcore/health"), 90)
        assert ui.text == "ok"
        assert "<title>" in httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10).text

        from mcp import Client, StdioServerParameters

        async def tools() -> set[str]:
            params = StdioServerParameters(
                command=str(installed / "mpt"),
                args=["mcp"],
                env=env | {"MPT_API_URL": f"http://127.0.0.1:{api_port}"},
                cwd=str(elsewhere),
            )
            async with Client(params) as client:
                return {t.name for t in (await client.list_tools()).tools}

        assert {"create_video", "get_run", "list_voices"} <= asyncio.run(tools())
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(0.2)
