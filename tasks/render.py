"""Render stage: one ffmpeg filter graph, one encode.

Each cut is read with input seeking (`-ss`/`-t` before `-i`) so only the frames it needs are
decoded; frames never pass through Python. The graph is built here as plain strings, one
labelled chain per cut, so a reader sees exactly what ffmpeg runs:

    cut k:  [k:v] speed → fps → crop+scale (cover) | scale over blur/colour (contain)
                  | Ken Burns zoom (image) → exact length → [ck]
    join:   [c0][c1]… concat, or a chain of xfade transitions → [vcat]
    text:   [vcat] ass (burned subtitles) → encoder format → [vout]
    audio:  narration (volume, padded) + music (looped, volume, fade-out, ducked under the
            voice by sidechain compression) → mix → loudness normalisation → [aout]
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from blocks.settings import get_settings
from spec.options import Background, Encoder, Fit, Transition
from spec.video import RenderOptions
from tasks.encoders import device_args, pick_encoder, quality_args, upload_filter
from tasks.files import atomic_path
from tasks.materials import Clip, Materials
from tasks.media import AUDIO_SUFFIXES, ffmpeg_log, probe, run_ffmpeg
from tasks.progress import report_fraction
from tasks.stage import stage, stage_dir
from tasks.subtitles import Subtitles
from tasks.timings import Narration

log = logging.getLogger(__name__)

AUDIO_RATE = 48000
KEN_BURNS_ZOOM = 0.12  # how far an image zooms (or pans, as a share of it) over its cut
MOTIONS = ("in", "out", "left", "right")
XFADES = [t for t in Transition if t not in (Transition.none, Transition.random)]
# Ducking: the music is compressed by the voice's level, well below speech.
DUCK = "threshold=0.02:ratio=12:attack=15:release=350:makeup=1"
# Gentle voice-over compression: it narrows speech's peak-to-loudness ratio, so the gain that
# reaches the loudness target leaves little for the true-peak limiter to squash.
TRUE_PEAK_LIMITER = "alimiter=limit=0.841:attack=5:release=50:level=false"  # -1.5 dBFS
VOICE_COMPRESSOR = "acompressor=threshold=0.1:ratio=4:attack=5:release=80:makeup=2"


class Cut(BaseModel):
    clip: Clip
    offset_s: float  # where in the clip the cut starts
    duration_s: float  # on the timeline, including the overlap its transition eats
    transition: Transition = Transition.none  # into the next cut
    scene: int = 0  # the storyboard scene it shows
    motion: str = "in"  # a still's slow motion: zoom "in" or "out", pan "left" or "right"


class RenderResult(BaseModel):
    video: Path
    duration_s: float
    width: int
    height: int
    encoder: str
    cuts: int
    streamed: bool = False  # the picture was streamed in segments (long timelines)
    warnings: list[str] = []

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
    """Cuts that cover `duration_s`, scene by scene: each scene shows its picks in order,
    none longer than the longest cut, and starts on the frame its first word does (a
    transition begins there). Each cut but the last also
    covers its transition's overlap. Lengths are whole frames, so every way of drawing the
    timeline lands on the same frames.
    """

    def frames(seconds: float) -> float:
        return round(seconds * opts.fps) / opts.fps

    total = frames(duration_s)
    fading = opts.transition != Transition.none
    overlap = frames(opts.transition_duration) if fading else 0.0
    rng = random.Random(seed * 1000 + video_index)
    scenes = materials.scenes
    cuts: list[Cut] = []
    for n, scene in enumerate(scenes):
        start = 0.0 if n == 0 else min(total, frames(scene.start_s))
        end = total if n == len(scenes) - 1 else min(total, frames(scenes[n + 1].start_s))
        if end - start < 1e-6:
            continue
        picks = scene.picks[min(video_index, len(scene.picks) - 1)]
        covered, i = start, 0
        while covered < end - 1e-6:
            clip = materials.clips[picks[i % len(picks)]]
            i += 1
            usable = clip.usable_s(opts.clip_duration * opts.clip_speed) / opts.clip_speed
            length = frames(min(usable, opts.clip_duration, end - covered))
            if end - covered - length < 0.5 / opts.fps:
                length = frames(end - covered)  # the scene's last cut ends on its boundary
            if length < max(0.2, overlap * 1.5) and cuts:
                # A sliver is not worth a cut: let the previous one run on instead.
                cuts[-1].duration_s += length
                covered += length
                continue
            span = (length + overlap) * opts.clip_speed  # source seconds the cut reads
            # A drawn clip starts at its beginning: drawing frames only to skip them is waste.
            spare = max(0.0, clip.duration_s - span) if clip.kind == "video" else 0.0
            spare = 0.0 if clip.recipe else spare
            transition = opts.transition
            if transition == Transition.random:
                transition = rng.choice(XFADES)
            cuts.append(
                Cut(
                    clip=clip,
                    offset_s=round(rng.uniform(0, spare), 3),
                    duration_s=length + overlap,
                    transition=transition,
                    scene=scene.index,
                    motion=rng.choice(MOTIONS) if clip.kind == "image" else "in",
                )
            )
            covered += length
    if cuts:
        cuts[-1].duration_s -= overlap
        cuts[-1].transition = Transition.none
    return cuts


def _hex(colour: str) -> str:
    return "0x" + colour.lstrip("#")[:6]


def _fit_chain(clip: Clip, opts: RenderOptions) -> str:
    """Scale/crop (cover) or scale over a blurred copy or a colour (contain)."""
    w, h = opts.size
    if opts.fit == Fit.cover:
        # Crop to the frame's aspect first so the scaler only touches pixels that are kept.
        if clip.width * h > clip.height * w:
            cw, ch = round(clip.height * w / h) // 2 * 2, clip.height
        else:
            cw, ch = clip.width, round(clip.width * h / w) // 2 * 2
        return f"crop={cw}:{ch},scale={w}:{h}:flags=bicubic"
    fg = f"scale={w}:{h}:force_original_aspect_ratio=decrease:flags=bicubic"
    if opts.background == Background.color:
        return f"{fg},pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color={_hex(opts.background_color)}"
    # The blurred backdrop is made at 1/8 size: blur hides the resolution and costs 64x less.
    bw, bh = max(2, w // 8 // 2 * 2), max(2, h // 8 // 2 * 2)
    return (
        f"split=2[bg][fg];"
        f"[bg]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},"
        f"gblur=sigma=3,scale={w}:{h}:flags=bilinear[bgs];"
        f"[fg]{fg}[fgs];"
        f"[bgs][fgs]overlay=(W-w)/2:(H-h)/2"
    )


def _cut_input(
    cut: Cut, opts: RenderOptions, skip_s: float = 0.0, length_s: float | None = None
) -> list[str]:
    """Input options reading `length_s` of the cut from `skip_s` into it (input seeking)."""
    # One decoder thread per input: only one or two inputs decode at a time, and frame
    # threads on every input would multiply memory by the number of cuts.
    if cut.clip.kind == "image":
        return ["-threads", "1", "-i", str(cut.clip.path)]
    length = cut.duration_s - skip_s if length_s is None else length_s
    start = cut.offset_s + skip_s * opts.clip_speed
    if cut.clip.recipe:  # drawn by ffmpeg right here: nothing to decode
        seek = ["-ss", f"{start:.3f}"] if start > 0 else []
        duration = f"{length * opts.clip_speed:.3f}"
        return ["-f", "lavfi", *seek, "-t", duration, "-i", cut.clip.recipe]
    return [
        "-threads",
        "1",
        "-ss",
        f"{start:.3f}",
        "-t",
        f"{length * opts.clip_speed:.3f}",
        "-i",
        str(cut.clip.path),
    ]


def _cut_chain(
    src: str,
    out: str,
    cut: Cut,
    opts: RenderOptions,
    skip_s: float = 0.0,
    length_s: float | None = None,
) -> str:
    """The chain that turns input `src` into `length_s` of frame-sized video at `out`."""
    w, h = opts.size
    d = cut.duration_s - skip_s if length_s is None else length_s
    if cut.clip.kind == "image":
        frames = max(1, round(d * opts.fps))
        total = max(1, round(cut.duration_s * opts.fps))
        first = round(skip_s * opts.fps)
        # Ken Burns: zoompan turns the single decoded picture into `frames` frames, moving
        # by the frame's place in the whole cut (a cut can be drawn in two parts): a zoom in
        # or out about the centre, or a pan across at a fixed zoom.
        t = f"(on+{first})/{total}"
        centre_x, centre_y = "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)"
        zoom, x = f"1+{KEN_BURNS_ZOOM}*{t}", centre_x
        if cut.motion == "out":
            zoom = f"1+{KEN_BURNS_ZOOM}*(1-{t})"
        elif cut.motion in ("left", "right"):
            zoom = f"{1 + KEN_BURNS_ZOOM}"
            along = t if cut.motion == "left" else f"(1-{t})"
            x = f"(iw-iw/zoom)*{along}"
        body = (
            f"scale={w * 5 // 4}:{h * 5 // 4}:force_original_aspect_ratio=increase,"
            f"crop={w * 5 // 4}:{h * 5 // 4},"
            f"zoompan=z='{zoom}':x='{x}':y='{centre_y}':d={frames}"
            f":s={w}x{h}:fps={opts.fps}"
        )
    else:
        speed = f"setpts=(PTS-STARTPTS)/{opts.clip_speed}," if opts.clip_speed != 1 else ""
        body = f"{speed}fps={opts.fps},{_fit_chain(cut.clip, opts)}"
    # tpad guards against a clip that ends early; trim makes every cut exactly `d` long;
    # one timebase for all cuts, which xfade requires.
    return (
        f"[{src}]{body},setsar=1,format=yuv420p,"
        f"tpad=stop_mode=clone:stop_duration={d:.3f},trim=end_frame={round(d * opts.fps)},"
        f"setpts=PTS-STARTPTS,settb=1/{opts.fps * 1000}[{out}]"
    )


def _join_chains(cuts: list[Cut], overlap: float) -> list[str]:
    """Concatenate the cuts, or chain xfades where cuts overlap by `overlap` seconds."""
    n = len(cuts)
    if all(c.transition == Transition.none for c in cuts):
        return ["".join(f"[c{k}]" for k in range(n)) + f"concat=n={n}:v=1:a=0[vcat]"]
    chains, prev, length = [], "c0", cuts[0].duration_s
    for k in range(1, n):
        label = "vcat" if k == n - 1 else f"x{k}"
        chains.append(
            f"[{prev}][c{k}]xfade=transition={cuts[k - 1].transition.value}"
            f":duration={overlap}:offset={length - overlap:.3f}[{label}]"
        )
        prev, length = label, length + cuts[k].duration_s - overlap
    return chains


def _escape_path(path: Path) -> str:
    text = str(path)
    if any(ch in text for ch in "'\\\n"):
        raise StageError(f"unsupported character in path for ffmpeg filters: {text}")
    return "'" + text.replace(":", "\\:") + "'"


def _audio_chains(
    voice_idx: int, music_idx: int | None, opts: RenderOptions, total_s: float, finish: list[str]
) -> list[str]:
    """Narration and music mixed; `finish` filters run on the mix before [aout]."""
    chains = []
    stereo = f"aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
    shaping = f"{VOICE_COMPRESSOR}," if opts.loudness is not None else ""
    voice = (
        f"[{voice_idx}:a]{stereo},{shaping}volume={opts.voice_volume},apad=whole_dur={total_s:.3f}"
    )
    if music_idx is None:
        chains.append(",".join([voice, *finish]) + "[aout]")
        return chains
    fade = min(opts.music_fade_out, total_s / 2)
    music = f"[{music_idx}:a]{stereo},volume={opts.music_volume},atrim=duration={total_s:.3f}"
    if fade > 0:
        music += f",afade=t=out:st={total_s - fade:.3f}:d={fade:.3f}"
    if opts.duck:
        chains.append(f"{voice},asplit=2[voice][key]")
        chains.append(f"{music}[music]")
        chains.append(f"[music][key]sidechaincompress={DUCK}[bed]")
    else:
        chains.append(f"{voice}[voice]")
        chains.append(f"{music}[bed]")
    mix = "[voice][bed]amix=inputs=2:duration=first:normalize=0"
    chains.append(",".join([mix, *finish]) + "[aout]")
    return chains


def _audio_inputs(narration: Narration, music: Path | None) -> list[str]:
    args = ["-i", str(narration.audio)]
    if music is not None:
        args += ["-stream_loop", "-1", "-i", str(music)]
    return args


def measure_mix_loudness(narration: Narration, music: Path | None, opts: RenderOptions) -> float:
    """Integrated loudness (LUFS) of the mix before normalisation: an audio-only pass.

    Measuring first lets the render apply one exact gain (and a true-peak limiter) instead of
    loudnorm's single-pass estimate, which missed targets by up to 1.5 LU in tests.
    """
    total = narration.duration_s + opts.tail_s
    chains = _audio_chains(0, 1 if music else None, opts, total, ["ebur128=framelog=quiet"])
    text = ffmpeg_log(
        [
            *_audio_inputs(narration, music),
            "-filter_complex",
            ";".join(chains),
            "-map",
            "[aout]",
            "-t",
            f"{total:.3f}",
            "-f",
            "null",
            "-",
        ]
    )
    found = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", text)
    return float(found[-1]) if found else float("-inf")


def segment_commands(cuts: list[Cut], opts: RenderOptions) -> list[list[str]]:
    """ffmpeg arguments for each stretch of the picture, written as raw frames to stdout.

    Used for long timelines: one ffmpeg graph opens every cut at once and keeps each
    decoder's buffers to the end (about 12 MB per 1080p cut), so a 3-minute video of 4 s cuts
    would need over 1 GB. Here each stretch is one cut (plus the head of the next one while
    a transition blends them), so at most two decoders are alive, whatever the length.
    """
    fps = opts.fps
    commands: list[list[str]] = []
    start = 0.0  # where cut k begins on the timeline
    skip = 0.0  # the part of cut k already drawn inside the previous transition
    for k, cut in enumerate(cuts):
        fading = cut.transition != Transition.none and k + 1 < len(cuts)
        overlap = opts.transition_duration if fading else 0.0
        length = cut.duration_s - skip
        frames = round((start + cut.duration_s) * fps) - round((start + skip) * fps)
        args = _cut_input(cut, opts, skip, length)
        chains = [_cut_chain("0:v", "a", cut, opts, skip, length)]
        label = "a"
        if fading:
            args += _cut_input(cuts[k + 1], opts, 0.0, overlap)
            chains.append(_cut_chain("1:v", "b", cuts[k + 1], opts, 0.0, overlap))
            chains.append(
                f"[a][b]xfade=transition={cut.transition.value}:duration={overlap}"
                f":offset={length - overlap:.3f}[x]"
            )
            label = "x"
        # A rounding frame short would shift every later cut: pad, then count exactly.
        chains.append(f"[{label}]tpad=stop_mode=clone:stop=2[seg]")
        commands.append(
            [
                *args,
                "-filter_threads",
                "1",
                "-filter_complex",
                ";".join(chains),
                "-map",
                "[seg]",
                "-frames:v",
                str(frames),
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p",
                "pipe:1",
            ]
        )
        start += cut.duration_s - overlap
        skip = overlap
    return commands


def build_command(
    cuts: list[Cut],
    narration: Narration,
    subtitles: Subtitles | None,
    music: Path | None,
    opts: RenderOptions,
    out: Path,
    encoder: Encoder = Encoder.libx264,
    gain_db: float | None = None,
    streamed: bool = False,
) -> tuple[list[str], list[list[str]] | None]:
    """ffmpeg arguments for the whole video, and the feeders of its picture if `streamed`.

    Not streamed, the one graph cuts, joins, burns subtitles, mixes and encodes. Streamed,
    the picture arrives as raw frames on stdin from `segment_commands`, and this graph burns
    subtitles, mixes and encodes: still one encode, and no frame passes through Python.
    """
    total = narration.duration_s + opts.tail_s
    args: list[str] = [*device_args(encoder)]
    chains: list[str] = []
    feeders = None
    if streamed:
        w, h = opts.size
        args += [
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-s",
            f"{w}x{h}",
            "-framerate",
            str(opts.fps),
            "-thread_queue_size",
            "2",
            "-i",
            "pipe:0",
            "-filter_threads",  # one thread: each filter thread holds frames of its own
            "1",
        ]
        picture, video_inputs = "0:v", 1
        feeders = segment_commands(cuts, opts)
    else:
        for k, cut in enumerate(cuts):
            args += _cut_input(cut, opts)
            chains.append(_cut_chain(f"{k}:v", f"c{k}", cut, opts))
        chains += _join_chains(cuts, opts.transition_duration)
        picture, video_inputs = "vcat", len(cuts)
    if subtitles is not None:
        chains.append(
            f"[{picture}]ass=filename={_escape_path(subtitles.ass)}"
            f":fontsdir={_escape_path(subtitles.font.file.parent)}[vsub]"
        )
        picture = "vsub"
    chains.append(f"[{picture}]{upload_filter(encoder)}[vout]")

    args += _audio_inputs(narration, music)
    music_idx = video_inputs + 1 if music is not None else None
    finish = [f"aresample={AUDIO_RATE}"]
    if gain_db is not None:
        finish = [f"volume={gain_db:.2f}dB", TRUE_PEAK_LIMITER, *finish]
    chains += _audio_chains(video_inputs, music_idx, opts, total, finish)
    # fmt: off
    command = [
        *args,
        "-filter_complex", ";".join(chains),
        "-map", "[vout]", "-map", "[aout]",
        "-c:v", encoder.value, *quality_args(encoder, opts.preset, opts.crf, lean=streamed),
        "-r", str(opts.fps),
        "-c:a", "aac", "-b:a", "192k", "-ar", str(AUDIO_RATE),
        "-t", f"{total:.3f}", "-movflags", "+faststart",
        "-f", "mp4", str(out),
    ]
    # fmt: on
    return command, feeders


def render_video(
    materials: Materials,
    video_index: int,
    narration: Narration,
    subtitles: Subtitles | None,
    music: Path | None,
    opts: RenderOptions,
    seed: int,
    out: Path,
    on_progress: Callable[[float], None] | None = None,
) -> RenderResult:
    total = narration.duration_s + opts.tail_s
    # Transitions last whole frames, like the cuts they join.
    overlap = round(opts.transition_duration * opts.fps) / opts.fps
    opts = opts.model_copy(update={"transition_duration": overlap})
    cuts = plan_cuts(materials, video_index, total, opts, seed)
    encoder = pick_encoder(opts.encoder)
    warnings: list[str] = []
    gain_db = None
    if opts.loudness is not None:
        measured = measure_mix_loudness(narration, music, opts)
        if measured > -70:  # a silent mix has nothing to normalise
            gain_db = opts.loudness - measured

    def report(seconds: float) -> None:
        if on_progress is not None:
            on_progress(min(1.0, seconds / total))

    streamed = len(cuts) > get_settings().render_max_inputs

    def encode(encoder: Encoder, tmp: Path) -> None:
        command, feeders = build_command(
            cuts, narration, subtitles, music, opts, tmp, encoder, gain_db, streamed
        )
        run_ffmpeg(command, on_progress=report, feeders=feeders)

    with atomic_path(out) as tmp:
        try:
            encode(encoder, tmp)
        except StageError as exc:
            if encoder == Encoder.libx264:
                raise
            # A hardware encoder can be listed yet fail (no device, driver, session limit).
            msg = f"{encoder.value} failed, rendered with libx264 instead ({exc})"
            log.warning(msg)
            warnings.append(msg)
            encoder = Encoder.libx264
            encode(encoder, tmp)
        info = probe(tmp)
    log.info(
        "rendered %s: %dx%d, %.2f s, %d cuts%s, %s, loudness %s, %.1f MB",
        out,
        info.width,
        info.height,
        info.duration_s,
        len(cuts),
        " streamed" if streamed else "",
        encoder.value,
        f"{gain_db:+.2f} dB to {opts.loudness} LUFS" if gain_db is not None else "as is",
        out.stat().st_size / 1e6 if out.exists() else 0.0,
    )
    return RenderResult(
        video=out,
        duration_s=round(info.duration_s, 3),
        width=info.width,
        height=info.height,
        encoder=encoder.value,
        cuts=len(cuts),
        streamed=streamed,
        warnings=warnings,
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
        materials,
        video_index,
        narration,
        subtitles,
        music,
        opts,
        seed,
        out_dir / "video.mp4",
        on_progress=lambda f: report_fraction("render", f),
    )
