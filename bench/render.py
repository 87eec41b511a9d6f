"""Benchmark: our renderer against the encode floor and a MoviePy baseline, side by side.

A fixed case: four 8 s clips made with ffmpeg's test sources (three 1920×1080, one
1080×1920), 30 s of narration, six subtitle cues, music at 0.2, rendered to 1080×1920.
Each contender runs in its own child process; we report its wall time, CPU seconds (user +
sys of the child and everything it ran) and peak memory (the sum of RSS over its process
tree, sampled every 20 ms, and that of its ffmpeg processes alone: the Python around them
is the Prefect worker's, there whatever renders).

    .venv/bin/python bench/render.py                  # ours, floor, MoviePy (needs `moviepy`)
    .venv/bin/python bench/render.py --skip-moviepy
    .venv/bin/python bench/render.py --long 180       # memory of a 3-minute render

Install the baseline with `.venv/bin/pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZE = (1080, 1920)
CLIP_S = 8.0
CUT_S = 7.5  # four cuts of 7.5 s make 30 s
PRESET, CRF = "veryfast", 23
SOURCES = [
    ("testsrc2", "1920x1080"),
    ("smptehdbars", "1920x1080"),
    ("rgbtestsrc", "1920x1080"),
    ("testsrc2", "1080x1920"),
]
CUE_TEXT = [
    "Every cup of coffee begins as a cherry",
    "Farmers pick the ripe fruit by hand",
    "Roasting turns pale green seeds brown",
    "The darker the roast the bolder the taste",
    "Grind the beans just before brewing",
    "Remember the journey inside that cup",
]


def _ffmpeg(*args: str) -> None:
    from tasks.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def prepare(d: Path, seconds: float) -> dict:
    """Inputs every contender shares: clips, a narration of `seconds`, the music track."""
    clips = []
    for i, (src, size) in enumerate(SOURCES):
        path = d / f"clip{i}.mp4"
        if not path.exists():
            _ffmpeg(
                "-f",
                "lavfi",
                "-i",
                f"{src}=s={size}:r=30:d={CLIP_S}",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "18",
                "-pix_fmt",
                "yuv420p",
                str(path),
            )
        clips.append(str(path))
    voice = d / f"narration-{seconds:g}.wav"
    if not voice.exists():
        from tasks.narration import _synth_piper, get_voice, seeded_piper

        piper = seeded_piper(get_voice("piper:en_US-joe-medium").model_path or "", 0)
        audio, rate = _synth_piper(piper, " ".join(CUE_TEXT), 1.0)
        reps = int(np.ceil(seconds * rate / len(audio)))
        audio = np.tile(audio, reps)[: int(seconds * rate)]
        with wave.open(str(voice), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(audio.tobytes())
    return {
        "clips": clips,
        "voice": str(voice),
        "music": str(REPO / "resources/music/ambient-pad.m4a"),
        "seconds": seconds,
    }


def cues(seconds: float) -> list[tuple[float, float, str]]:
    n = max(6, round(seconds / 5))
    step = seconds / n
    return [(i * step, (i + 1) * step - 0.1, CUE_TEXT[i % 6]) for i in range(n)]


def worker_ours(inputs: dict, out: str) -> None:
    from spec.subtitles import SubtitleStyle
    from tasks.materials import Clip, Materials
    from tasks.media import probe
    from tasks.render import RenderOptions, render_video
    from tasks.subtitles import make_subtitles, resolve_font
    from tasks.timings import Narration, SentenceTiming, word_timings

    seconds = inputs["seconds"]
    d = Path(out).parent
    sentences = [
        SentenceTiming(text=t, start_s=a, end_s=b, words=word_timings(t, a, b))
        for a, b, t in cues(seconds)
    ]
    narration = Narration(
        audio=Path(inputs["voice"]),
        timings=d / "t.json",
        voice="bench",
        duration_s=seconds,
        sample_rate=22050,
        sentences=sentences,
    )
    style = SubtitleStyle()
    subtitles = make_subtitles(narration, style, resolve_font(style.font, "x"), SIZE, d)
    clips = []
    for path in inputs["clips"]:
        info = probe(Path(path))
        clips.append(
            Clip(
                path=Path(path),
                kind="video",
                width=info.width,
                height=info.height,
                duration_s=info.duration_s,
                source="local",
            )
        )
    order = list(range(len(clips)))
    timeline = order * int(np.ceil(seconds / CUT_S / len(order)) + 1)
    materials = Materials.sequence(clips, [timeline])
    opts = RenderOptions(
        size=SIZE, clip_duration=CUT_S, preset=PRESET, crf=CRF, music_volume=0.2, encoder="libx264"
    )
    render_video(materials, 0, narration, subtitles, Path(inputs["music"]), opts, 1, Path(out))


def worker_floor(inputs: dict, out: str) -> None:
    from tasks.media import run_ffmpeg

    w, h = SIZE
    run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s={w}x{h}:r=30:d={inputs['seconds']}",
            "-c:v",
            "libx264",
            "-preset",
            PRESET,
            "-crf",
            str(CRF),
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mp4",
            out,
        ]
    )


def worker_moviepy(inputs: dict, out: str) -> None:
    from moviepy import (
        AudioFileClip,
        CompositeAudioClip,
        CompositeVideoClip,
        TextClip,
        VideoFileClip,
        afx,
        concatenate_videoclips,
    )

    w, h = SIZE
    seconds = inputs["seconds"]
    parts, t = [], 0.0
    i = 0
    while t < seconds - 1e-3:
        length = min(CUT_S, seconds - t)
        clip = VideoFileClip(inputs["clips"][i % 4]).subclipped(0, length)
        scale = max(w / clip.w, h / clip.h)  # cover: scale up, then centre-crop
        clip = clip.resized(scale).cropped(
            x_center=clip.w * scale / 2, y_center=clip.h * scale / 2, width=w, height=h
        )
        parts.append(clip)
        t += length
        i += 1
    video = concatenate_videoclips(parts)
    font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    texts = [
        TextClip(
            font=font,
            text=text,
            font_size=60,
            color="white",
            stroke_color="black",
            stroke_width=4,
            method="caption",
            size=(int(w * 0.86), None),
        )
        .with_start(a)
        .with_duration(b - a)
        .with_position(("center", int(h * 0.78)))
        for a, b, text in cues(seconds)
    ]
    voice = AudioFileClip(inputs["voice"])
    music = AudioFileClip(inputs["music"]).with_effects(
        [afx.AudioLoop(duration=seconds), afx.MultiplyVolume(0.2)]
    )
    final = CompositeVideoClip([video, *texts], size=SIZE).with_duration(seconds)
    final = final.with_audio(CompositeAudioClip([voice, music]).with_duration(seconds))
    final.write_videofile(
        out,
        fps=30,
        codec="libx264",
        preset=PRESET,
        audio_codec="aac",
        ffmpeg_params=["-crf", str(CRF)],
        threads=os.cpu_count(),
        logger=None,
    )


WORKERS = {"ours": worker_ours, "floor": worker_floor, "moviepy": worker_moviepy}


def _role(p) -> str:  # noqa: ANN001 - a psutil.Process
    """What a process in the tree is: python, or which ffmpeg run."""
    cmd = p.cmdline()
    if "ffmpeg" not in p.name():
        return "python"
    if "pipe:0" in cmd:
        return "ffmpeg encoder"
    if "pipe:1" in cmd and "rawvideo" in cmd:
        return "ffmpeg segment"
    return "ffmpeg"


def measure(name: str, inputs: dict, d: Path) -> dict:
    """Run one contender in a child process; wall, CPU of the whole tree, peak tree RSS."""
    import psutil

    out = d / f"{name}.mp4"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", name, json.dumps(inputs), str(out)]
    )
    proc = psutil.Process(child.pid)
    peak = peak_ffmpeg = 0
    per_pid: dict[int, tuple[str, int]] = {}
    while child.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            rss = {p.pid: (_role(p), p.memory_info().rss) for p in tree if p.is_running()}
        except psutil.Error:
            continue
        peak = max(peak, sum(r for _, r in rss.values()))
        peak_ffmpeg = max(peak_ffmpeg, sum(r for n, r in rss.values() if n != "python"))
        for pid, (n, r) in rss.items():
            per_pid[pid] = (n, max(r, per_pid.get(pid, (n, 0))[1]))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        sys.exit(f"{name} failed with exit code {child.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    roles: dict[str, int] = {}
    for role, r in per_pid.values():
        roles[role] = max(r, roles.get(role, 0))
    print(
        f"{name}: largest of each kind of process (MB): "
        + ", ".join(f"{n} {r / 2**20:.0f}" for n, r in sorted(roles.items()))
    )
    return {
        "name": name,
        "wall": wall,
        "cpu": cpu,
        "rss_mb": peak / 2**20,
        "ffmpeg_mb": peak_ffmpeg / 2**20,
        "out": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--skip-moviepy", action="store_true")
    parser.add_argument("--long", type=float, help="only ours, at this many seconds")
    opts = parser.parse_args()
    if opts.worker:
        WORKERS[opts.worker](json.loads(opts.args[0]), opts.args[1])
        return

    d = Path(tempfile.mkdtemp(prefix="mpt-bench-render-"))
    os.environ.setdefault("MPT_WORK_DIR", str(d / "work"))
    seconds = opts.long or 30.0
    inputs = prepare(d, seconds)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; preset {PRESET}, CRF {CRF}, "
        f"{SIZE[0]}x{SIZE[1]}, {seconds:g} s"
    )
    names = (
        ["ours"] if opts.long else ["ours", "floor"] + ([] if opts.skip_moviepy else ["moviepy"])
    )
    rows = [measure(n, inputs, d) for n in names]
    print(f"{'':10}{'wall s':>9}{'CPU s':>9}{'peak RSS MB (tree)':>20}{'(ffmpeg procs)':>16}")
    for r in rows:
        print(
            f"{r['name']:10}{r['wall']:9.1f}{r['cpu']:9.1f}{r['rss_mb']:20.0f}"
            f"{r['ffmpeg_mb']:16.0f}"
        )
    by = {r["name"]: r for r in rows}
    if "floor" in by:
        print(f"ours / floor CPU = {by['ours']['cpu'] / by['floor']['cpu']:.2f}")
    if "moviepy" in by:
        print(
            f"MoviePy / ours CPU = {by['moviepy']['cpu'] / by['ours']['cpu']:.1f}  "
            f"(wall {by['moviepy']['wall'] / by['ours']['wall']:.1f})"
        )


if __name__ == "__main__":
    main()
