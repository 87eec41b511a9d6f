"""ffmpeg and probing: the only place that knows how to call them."""

from __future__ import annotations

import contextvars
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal

import av
import numpy as np
from pydantic import BaseModel

from blocks.errors import StageError
from blocks.processes import reap, spawn, tied_to_parent

IMAGE_CODECS = {"png", "mjpeg", "webp", "bmp", "tiff", "gif", "jpegls"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"}
AUDIO_SUFFIXES = {".mp3", ".m4a", ".aac", ".wav", ".ogg", ".opus", ".flac"}


class MediaInfo(BaseModel):
    kind: Literal["video", "image", "audio"]
    width: int = 0
    height: int = 0
    duration_s: float = 0.0
    fps: float = 0.0
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int = 0


@lru_cache
def ffmpeg_exe() -> str:
    """The static ffmpeg that imageio-ffmpeg ships (libx264, libass), so nothing system-wide."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(
    args: list[str],
    timeout_s: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    feeders: Iterable[list[str]] | None = None,
) -> None:
    """Run ffmpeg with `args`; raise StageError with ffmpeg's own last words on failure.

    With `on_progress`, ffmpeg's `-progress` stream is read as it runs and the callback gets
    the seconds of output written so far. With `feeders`, each is the arguments of another
    ffmpeg run, one after another, whose output is piped into this one's standard input
    (frames pass from process to process through the kernel, never through Python).
    """
    from blocks.settings import get_settings

    limit = timeout_s or get_settings().ffmpeg_timeout_s
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if on_progress is not None:
        cmd += ["-progress", "pipe:1", "-nostats", "-stats_period", "0.25"]
    cmd += args
    deadline = time.monotonic() + limit
    with tempfile.TemporaryFile() as errors:
        proc = spawn(
            cmd,
            stdin=subprocess.PIPE if feeders is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        timer = threading.Timer(limit, proc.kill)
        timer.start()
        # The reader runs in this context's copy so callbacks see the run's context vars
        # (Prefect's run context, the flow's progress tracker); a new thread would not.
        context = contextvars.copy_context()
        reader = threading.Thread(
            target=context.run, args=(_read_progress, proc, on_progress), daemon=True
        )
        reader.start()
        feeder_error = None
        try:
            if feeders is not None:
                feeder_error = _feed(proc, feeders)
            reader.join()
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reap(proc)
        if time.monotonic() >= deadline and proc.returncode != 0:
            raise StageError(f"ffmpeg ran past its {limit:.0f} s limit")
        if proc.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace").strip()
            tail = " | ".join(text.splitlines()[-3:]) or f"exit {proc.returncode}"
            raise StageError(f"ffmpeg failed: {tail}")
        if feeder_error:
            raise StageError(f"ffmpeg failed: {feeder_error}")


def _read_progress(proc: subprocess.Popen, on_progress: Callable[[float], None] | None) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if on_progress is not None and line.startswith("out_time_us="):
            value = line.split("=", 1)[1].strip()
            if value.isdigit():
                on_progress(int(value) / 1e6)


def _feed(proc: subprocess.Popen, feeders: Iterable[list[str]]) -> str | None:
    """Run each feeder with its stdout on `proc`'s stdin; the first failure's words, if any."""
    assert proc.stdin is not None
    try:
        for args in feeders:
            with tempfile.TemporaryFile() as errors:
                feeder = spawn(
                    [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=proc.stdin,
                    stderr=errors,
                )
                try:
                    code = feeder.wait()
                finally:  # an interrupt while it runs must not leave it behind
                    if feeder.poll() is None:
                        feeder.kill()
                        feeder.wait()
                    reap(feeder)
                if code != 0:
                    errors.seek(0)
                    text = errors.read().decode(errors="replace").strip()
                    return " | ".join(text.splitlines()[-3:]) or f"exit {feeder.returncode}"
    finally:
        proc.stdin.close()
    return None


def ffmpeg_log(args: list[str], timeout_s: float = 600) -> str:
    """Run ffmpeg at info level and return what it logged (filters such as ebur128 report
    their measurements there); raise StageError on failure."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", *args]
    try:
        proc = subprocess.run(
            tied_to_parent(cmd), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise StageError(f"ffmpeg ran past its {timeout_s:.0f} s limit") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
        raise StageError(f"ffmpeg failed: {tail}")
    return proc.stderr


@lru_cache
def ffmpeg_encoders() -> frozenset[str]:
    """Encoder names this ffmpeg build has (not whether a device for them exists)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def probe(path: Path) -> MediaInfo:
    """Read a media file's streams and decode its first frame; raise StageError if unreadable."""
    try:
        with av.open(str(path)) as container:
            vstreams = [s for s in container.streams.video]
            astreams = [s for s in container.streams.audio]
            duration = float(container.duration / 1e6) if container.duration else 0.0
            if vstreams:
                vs = vstreams[0]
                is_image = (vs.codec_context.name in IMAGE_CODECS and duration < 0.5) or (
                    path.suffix.lower() in IMAGE_SUFFIXES
                )
                # Decoding one frame catches files whose header is fine but whose data is not.
                next(container.decode(video=0))
                if not duration and vs.duration and vs.time_base:
                    duration = float(vs.duration * vs.time_base)
                return MediaInfo(
                    kind="image" if is_image else "video",
                    width=vs.codec_context.width,
                    height=vs.codec_context.height,
                    duration_s=0.0 if is_image else duration,
                    fps=float(vs.average_rate or 0),
                    video_codec=vs.codec_context.name,
                    audio_codec=astreams[0].codec_context.name if astreams else None,
                    sample_rate=astreams[0].codec_context.sample_rate if astreams else 0,
                )
            if astreams:
                a = astreams[0]
                return MediaInfo(
                    kind="audio",
                    duration_s=duration,
                    audio_codec=a.codec_context.name,
                    sample_rate=a.codec_context.sample_rate,
                )
    except (av.error.FFmpegError, StopIteration, OSError, UnicodeDecodeError) as exc:
        raise StageError(f"{path.name} is not a readable media file ({exc})") from None
    raise StageError(f"{path.name} has no audio or video stream")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit mono WAV's samples and rate."""
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit mono WAV, written under a temporary name and renamed into place."""
    from tasks.files import atomic_path

    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return path
