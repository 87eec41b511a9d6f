"""Render stage: one ffmpeg filter graph, one encode.

Each cut is read with input seeking (`-ss`/`-t` before `-i`) so only the frames it needs are
decoded; frames never pass through Python. The graph is built here as plain strings, one
labelled chain per cut, so a reader sees exactly what ffmpeg runs.
"""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import BaseModel

from blocks.settings import get_settings
from flows.spec import Fit, Transition
from tasks.errors import BadInput, StageError
from tasks.files import atomic_path
from tasks.materials import Clip, Materials
from tasks.media import AUDIO_SUFFIXES, probe, run_ffmpeg
from tasks.narration import Narration
from tasks.stage import stage, stage_dir
from tasks.subtitles import Subtitles

AUDIO_RATE = 48000
KEN_BURNS_ZOOM = 0.12  # how far an image zooms in over its cut


class RenderOptions(BaseModel):
    size: tuple[int, int]
    fps: int = 30
    fit: Fit = Fit.cover
    clip_duration: float = 4.0
    transition: Transition = Transition.none
    transition_duration: float = 0.5
    voice_volume: float = 1.0
    music_volume: float = 0.2
    preset: str = "veryfast"
    crf: int = 23


class Cut(BaseModel):
    clip: Clip
    offset_s: float  # where in the clip the cut starts
    duration_s: float  # including the overlap a transition eats


class RenderResult(BaseModel):
    video: Path
    duration_s: float
    width: int
    height: int

    def files(self) -> list[Path]:
        return [self.video]


def pick_music(music: str, seed: int) -> Path | None:
    """'none', 'random' (a seeded pick from the music folder) or a file path."""
    if music == "none":
        return None
    if music == "random":
        folder = get_settings().music_dir
        tracks = (
            sorted(p for p in folder.glob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if folder.is_dir()
            else []
        )
        if not tracks:
            raise BadInput(f"music=random but {folder} holds no audio files")
        return random.Random(seed).choice(tracks)
    path = Path(music)
    if not path.is_file():
        raise BadInput(f"music file not found: {music}")
    return path


def plan_cuts(
    materials: Materials, video_index: int, duration_s: float, opts: RenderOptions, seed: int
) -> list[Cut]:
    """Cuts that cover `duration_s`; each but the last also covers the next transition."""
    overlap = opts.transition_duration if opts.transition != Transition.none else 0.0
    rng = random.Random(seed * 1000 + video_index)
    timeline = materials.timelines[video_index]
    cuts: list[Cut] = []
    covered = 0.0
    i = 0
    while covered < duration_s - 1e-3:
        clip = materials.clips[timeline[i % len(timeline)]]
        i += 1
        length = min(clip.usable_s(opts.clip_duration), duration_s - covered)
        if length < 0.2 and cuts:
            # A sliver is not worth a cut: let the previous one run on instead.
            cuts[-1].duration_s += length
            break
        spare = max(0.0, clip.duration_s - length - overlap) if clip.kind == "video" else 0.0
        cuts.append(
            Cut(clip=clip, offset_s=round(rng.uniform(0, spare), 3), duration_s=length + overlap)
        )
        covered += length
    if cuts:
        cuts[-1].duration_s -= overlap
    return cuts


def _fit_chain(clip: Clip, opts: RenderOptions) -> str:
    """Scale/crop (cover) or scale over a blurred fill (contain) to the frame size."""
    w, h = opts.size
    if opts.fit == Fit.cover:
        # Crop to the frame's aspect first so the scaler only touches pixels that are kept.
        if clip.width * h > clip.height * w:
            cw, ch = round(clip.height * w / h) // 2 * 2, clip.height
        else:
            cw, ch = clip.width, round(clip.width * h / w) // 2 * 2
        return f"crop={cw}:{ch},scale={w}:{h}:flags=bicubic"
    # The blurred backdrop is made at 1/8 size: blur hides the resolution and costs 64x less.
    bw, bh = max(2, w // 8 // 2 * 2), max(2, h // 8 // 2 * 2)
    return (
        f"split=2[bg][fg];"
        f"[bg]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},"
        f"gblur=sigma=4,scale={w}:{h}[bgs];"
        f"[fg]scale={w}:{h}:force_original_aspect_ratio=decrease:flags=bicubic[fgs];"
        f"[bgs][fgs]overlay=(W-w)/2:(H-h)/2"
    )


def _cut_input(cut: Cut, fps: int) -> list[str]:
    if cut.clip.kind == "image":
        return ["-i", str(cut.clip.path)]
    return ["-ss", f"{cut.offset_s:.3f}", "-t", f"{cut.duration_s:.3f}", "-i", str(cut.clip.path)]


def _cut_chain(k: int, cut: Cut, opts: RenderOptions) -> str:
    w, h = opts.size
    d = cut.duration_s
    if cut.clip.kind == "image":
        frames = max(1, round(d * opts.fps))
        # Ken Burns: zoompan turns the single decoded picture into `frames` frames.
        zoom = f"1+{KEN_BURNS_ZOOM}*on/{frames}"
        body = (
            f"scale={w * 5 // 4}:{h * 5 // 4}:force_original_aspect_ratio=increase,"
            f"crop={w * 5 // 4}:{h * 5 // 4},"
            f"zoompan=z='{zoom}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={frames}"
            f":s={w}x{h}:fps={opts.fps}"
        )
    else:
        body = f"fps={opts.fps},{_fit_chain(cut.clip, opts)}"
    # tpad guards against a clip that ends early; trim makes every cut exactly `d` long.
    return (
        f"[{k}:v]{body},setsar=1,format=yuv420p,"
        f"tpad=stop_mode=clone:stop_duration={d:.3f},trim=duration={d:.3f},"
        f"setpts=PTS-STARTPTS[c{k}]"
    )


def _escape_path(path: Path) -> str:
    text = str(path)
    if any(ch in text for ch in "'\\\n"):
        raise StageError(f"unsupported character in path for ffmpeg filters: {text}")
    return "'" + text.replace(":", "\\:") + "'"


def build_command(
    cuts: list[Cut],
    narration: Narration,
    subtitles: Subtitles | None,
    music: Path | None,
    opts: RenderOptions,
    out: Path,
    duration_s: float,
) -> list[str]:
    """ffmpeg arguments (after the binary) for the whole video."""
    args: list[str] = []
    chains: list[str] = []
    for k, cut in enumerate(cuts):
        args += _cut_input(cut, opts.fps)
        chains.append(_cut_chain(k, cut, opts))
    n = len(cuts)
    if opts.transition == Transition.none or n == 1:
        chains.append("".join(f"[c{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0[vcat]")
    else:
        t = opts.transition_duration
        prev, length = "c0", cuts[0].duration_s
        for k in range(1, n):
            label = "vcat" if k == n - 1 else f"x{k}"
            chains.append(
                f"[{prev}][c{k}]xfade=transition={opts.transition.value}:duration={t}"
                f":offset={length - t:.3f}[{label}]"
            )
            prev, length = label, length + cuts[k].duration_s - t
    video_tail = "[vcat]"
    if subtitles is not None:
        chains.append(
            f"[vcat]ass=filename={_escape_path(subtitles.ass)}"
            f":fontsdir={_escape_path(subtitles.font.file.parent)}[vsub]"
        )
        video_tail = "[vsub]"
    chains.append(f"{video_tail}format=yuv420p[vout]")

    voice_idx = n
    args += ["-i", str(narration.audio)]
    voice = (
        f"[{voice_idx}:a]aresample={AUDIO_RATE},volume={opts.voice_volume},"
        f"apad=whole_dur={duration_s:.3f}"
    )
    if music is not None:
        args += ["-stream_loop", "-1", "-i", str(music)]
        chains.append(f"{voice}[voice]")
        chains.append(
            f"[{n + 1}:a]aresample={AUDIO_RATE},volume={opts.music_volume},"
            f"atrim=duration={duration_s:.3f}[music]"
        )
        chains.append(
            "[voice][music]amix=inputs=2:duration=first:normalize=0,"
            "aformat=channel_layouts=stereo[aout]"
        )
    else:
        chains.append(f"{voice},aformat=channel_layouts=stereo[aout]")

    return [
        *args,
        "-filter_complex",
        ";".join(chains),
        "-map",
        "[vout]",
        "-map",
        "[aout]",
        "-c:v",
        "libx264",
        "-preset",
        opts.preset,
        "-crf",
        str(opts.crf),
        "-pix_fmt",
        "yuv420p",
        "-r",
        str(opts.fps),
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        "-ar",
        str(AUDIO_RATE),
        "-t",
        f"{duration_s:.3f}",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(out),
    ]


def render_video(
    materials: Materials,
    video_index: int,
    narration: Narration,
    subtitles: Subtitles | None,
    music: Path | None,
    opts: RenderOptions,
    seed: int,
    out: Path,
) -> RenderResult:
    duration = narration.duration_s
    cuts = plan_cuts(materials, video_index, duration, opts, seed)
    with atomic_path(out) as tmp:
        run_ffmpeg(build_command(cuts, narration, subtitles, music, opts, tmp, duration))
        info = probe(tmp)
    return RenderResult(
        video=out, duration_s=round(info.duration_s, 3), width=info.width, height=info.height
    )


@stage("render")
def render_stage(
    materials: Materials,
    video_index: int,
    narration: Narration,
    subtitles: Subtitles | None,
    music: Path | None,
    opts: RenderOptions,
    seed: int,
) -> RenderResult:
    out_dir = stage_dir("render", materials, video_index, narration, subtitles, music, opts, seed)
    return render_video(
        materials, video_index, narration, subtitles, music, opts, seed, out_dir / "video.mp4"
    )
