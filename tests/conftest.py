"""Test set-up: every test runs against a real Prefect server, real ffmpeg and a private work dir.

Environment is set before any project or Prefect import, since both read it once.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="mpt-tests-"))
os.environ["MPT_WORK_DIR"] = str(_ROOT / "work")
os.environ["MPT_OUTPUT_ROOT"] = str(_ROOT / "output")
os.environ["MPT_RETRY_BASE_DELAY_S"] = "0"
os.environ["PREFECT_HOME"] = str(_ROOT / "prefect-home")
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_ROOT / "work" / "results")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("PREFECT_API_URL", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tasks.media import ffmpeg_exe  # noqa: E402

# The service fixtures (PostgreSQL database, deployments) live beside the other helpers.
pytest_plugins = ["tests.service"]

SAMPLE_SCRIPT = (
    "Coffee is one of the most popular drinks in the world. "
    "It grows in tropical regions near the equator. "
    "Roasting brings out the flavour of the beans."
)


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def fake():
    """A local fake provider server (tests/fakes.py), closed after the test."""
    from .fakes import FakeServer

    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def settings_env(monkeypatch):
    """Set MPT_* variables for one test; settings are re-read on both sides of it."""
    from blocks.settings import get_settings

    def apply(**env: str) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def root() -> Path:
    return _ROOT


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=120)


def make_video(
    path: Path,
    size: str = "640x360",
    seconds: float = 3,
    source: str = "testsrc2",
    audio: bool = False,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # `source` may carry options of its own ("color=c=red"): the rest are appended to them.
    sep = ":" if "=" in source else "="
    args = ["-f", "lavfi", "-i", f"{source}{sep}s={size}:r=30:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-c:a", "aac"]
    ffmpeg(
        *args,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-shortest",
        str(path),
    )
    return path


def make_image(path: Path, size: str = "800x600", colour: str = "orange") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=s={size}:d=1",
        "-vf",
        f"drawbox=c={colour}:t=40",
        "-frames:v",
        "1",
        str(path),
    )
    return path


def frame_at(video: Path, t: float) -> np.ndarray:
    """The decoded RGB frame at `t` seconds, as an H×W×3 array."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        container.seek(int(max(0.0, t - 1) / stream.time_base), stream=stream)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= t - 1e-3:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {t} s in {video}")


def media(video: Path) -> dict:
    """Stream facts read back from a file: codecs, size, duration."""
    import av

    with av.open(str(video)) as c:
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        return {
            "video_codec": v.codec_context.name if v else None,
            "audio_codec": a.codec_context.name if a else None,
            "width": v.codec_context.width if v else 0,
            "height": v.codec_context.height if v else 0,
            "duration": c.duration / 1e6 if c.duration else 0.0,
        }


def integrated_lufs(path: Path) -> float:
    """The integrated loudness of a file's audio, as ffmpeg's ebur128 filter measures it."""
    import re

    log = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostats",
            "-hide_banner",
            "-i",
            str(path),
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stderr
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", log)[-1])
