"""The upscale stage: footage smaller than the frame, upscaled ×2 or ×4 before the render.

`plan` picks the clips (files, not drawn backgrounds) that the render would otherwise
stretch; `upscale_jobs` chooses a model for each from the weights folder, on the device
at hand, and upscales each clip through a cached task keyed by the content of the clip and
of the weights, so a rerun, or another video using the same clip, reuses the file. Where
this runs (the `gpu` pool's deployment, in-process on CUDA, or on the CPU) is the flow's
choice: see flows/upscale.py.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import time
from pathlib import Path

from pydantic import BaseModel

import tasks.upscale as upscale_engine
from blocks.errors import BadInput, StageError
from blocks.settings import get_settings
from tasks.materials import Materials
from tasks.stage import stage, stage_dir
from tasks.upscale import ModelInfo, Upscaler, load_model, pick_device, probe_video, upscale_file

log = logging.getLogger(__name__)

# On a GPU, the best model found: Real-ESRGAN's RRDBNet, then SwinIR, then a compact one.
GPU_PREFERENCE = {"ESRGAN": 0, "SwinIR": 1, "Compact": 2}
# On the CPU only a compact model finishes in a reasonable time.
CPU_ARCHITECTURES = {"Compact"}


class UpscaleJob(BaseModel):
    """One clip the render would stretch, and by how much it needs to grow."""

    path: Path
    width: int
    height: int
    scale: int  # 2 or 4: the smallest factor that reaches the frame
    frames: int  # for the time estimate on the CPU

    def files(self) -> list[Path]:
        return [self.path]


class UpscaledClip(BaseModel):
    source: Path
    path: Path
    width: int
    height: int
    model: str

    def files(self) -> list[Path]:
        return [self.path]


class UpscaleReport(BaseModel):
    """What the stage did, wherever it ran."""

    clips: list[UpscaledClip]
    models: list[str]
    device: str  # "cuda (NVIDIA H100 …)" or "cpu"
    where: str  # "pool gpu" or "in-process"
    cached: int = 0  # clips whose upscale was reused
    warnings: list[str] = []

    def files(self) -> list[Path]:
        return [c.path for c in self.clips]


def plan(materials: Materials, size: tuple[int, int], fit: str = "cover") -> list[UpscaleJob]:
    """Each clip file a video shows that is smaller than the frame (drawn backgrounds are
    drawn at any size): with `cover` it must fill the frame, with `contain` fit inside it."""
    width, height = size
    jobs, seen = [], set()
    for clip in materials.shown():
        if clip.recipe is not None or clip.path in seen:
            continue
        ratios = (width / max(clip.width, 1), height / max(clip.height, 1))
        need = max(ratios) if fit == "cover" else min(ratios)
        if need <= 1.0:
            continue
        seen.add(clip.path)
        frames = 1
        if clip.kind == "video":
            info = probe_video(clip.path)
            num, _, den = info.fps.partition("/")
            frames = max(1, round(clip.duration_s * int(num) / int(den or 1)))
        jobs.append(
            UpscaleJob(
                path=clip.path,
                width=clip.width,
                height=clip.height,
                scale=2 if need <= 2 else 4,
                frames=frames,
            )
        )
    return jobs


def apply(materials: Materials, report: UpscaleReport) -> Materials:
    """The same materials, each upscaled clip's file and size in place of the original's."""
    done = {c.source: c for c in report.clips}
    clips = []
    for clip in materials.clips:
        up = done.get(clip.path)
        clips.append(
            clip
            if up is None
            else clip.model_copy(update={"path": up.path, "width": up.width, "height": up.height})
        )
    warnings = materials.warnings + report.warnings
    return materials.model_copy(update={"clips": clips, "warnings": warnings})


def choose(models: list[ModelInfo], scale: int, cuda: bool) -> ModelInfo | None:
    """The best model for a clip that needs `scale`: on a GPU the strongest architecture;
    on the CPU a compact one only. The exact scale first, then a larger one (the render
    scales it down), then a smaller one (better than none)."""
    usable = [m for m in models if cuda or m.architecture in CPU_ARCHITECTURES]

    def rank(m: ModelInfo) -> tuple[int, int, str]:
        fit = 0 if m.scale == scale else 1 if m.scale > scale else 2
        return (GPU_PREFERENCE.get(m.architecture, 3), fit, m.name) if cuda else (fit, 0, m.name)

    return min(usable, key=rank, default=None)


# Loaded models stay loaded for the next clip (and the next video in a worker).
_loaded: dict[tuple[str, int, int, str], Upscaler] = {}


def _model(path: Path) -> Upscaler:
    st = path.stat()
    device = pick_device()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(device))
    if key not in _loaded:
        if len(_loaded) >= 2:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = load_model(path, device)
    return _loaded[key]


def upscale_clip(clip: Path, weights: Path) -> UpscaledClip:
    """The engine for one clip: the model over every frame, into this stage's folder."""
    up = _model(weights)
    info = probe_video(clip)
    suffix = ".png" if info.image else ".mp4"
    dst = stage_dir("upscale", clip, weights) / f"{clip.stem}-x{up.scale}{suffix}"
    settings = get_settings().upscale
    stats = upscale_file(up, clip, dst, info, batch=settings.batch, tile=settings.tile)
    log.info(
        "upscaled %s ×%d with %s on %s: %d frames, %.1f frames/s",
        clip.name,
        up.scale,
        up.info.name,
        up.device,
        stats.frames,
        stats.fps,
    )
    return UpscaledClip(
        source=clip,
        path=dst,
        width=info.width * up.scale,
        height=info.height * up.scale,
        model=up.info.name,
    )


# The engine lives in its own module: its source is part of each upscale's key.
ENGINE = hashlib.sha256(inspect.getsource(upscale_engine).encode()).hexdigest()[:16]


@stage("upscale")
def upscale_clip_stage(clip: Path, weights: Path, engine: str = ENGINE) -> UpscaledClip:
    # Keyed by the clip's and the weights' content and the engine's source (not the device:
    # CUDA or CPU make the same picture, within rounding).
    return upscale_clip(clip, weights)


def _run_clip(clip: Path, weights: Path) -> tuple[UpscaledClip, bool]:
    state = upscale_clip_stage(clip=clip, weights=weights, return_state=True)
    result, cached = state.result(), state.name == "Cached"
    if cached and not result.path.is_file():  # the cached file was cleaned away: make it again
        state = upscale_clip_stage.with_options(refresh_cache=True)(
            clip=clip, weights=weights, return_state=True
        )
        result, cached = state.result(), False
    return result, cached


def device_label() -> tuple[str, bool]:
    """What upscaling here would run on, and whether it is a GPU."""
    device = pick_device()
    if device.type != "cuda":
        return "cpu", False
    import torch

    return f"cuda ({torch.cuda.get_device_name(device)})", True


def available(folder: Path) -> tuple[list[ModelInfo], list[str]]:
    """The loadable models in the folder, and a line for each file that is not one."""
    from tasks.upscale import list_models

    models, refused = [], []
    for item in list_models(folder):
        (models if isinstance(item, ModelInfo) else refused).append(item)
    return models, refused


def upscale_jobs(jobs: list[UpscaleJob], model: str, where: str = "in-process") -> UpscaleReport:
    """Upscale every job here, with `model` ('auto' or a weights file's name)."""
    settings = get_settings().upscale
    folder = settings.weights_dir
    label, cuda = device_label()
    if not cuda and settings.require_gpu:
        raise StageError(
            "upscaling needs a GPU (MPT_UPSCALE__REQUIRE_GPU is set): no CUDA device here"
            + ("" if where != "in-process" else f" and no worker online on pool {settings.pool!r}")
        )
    warnings: list[str] = []
    chosen: dict[int, Path] = {}
    if model == "auto":
        models, refused = available(folder)
        warnings += [f"upscale: {line}" for line in refused]
        for i, job in enumerate(jobs):
            best = choose(models, job.scale, cuda)
            if best is not None:
                chosen[i] = folder / best.name
        left = len(jobs) - len(chosen)
        if left:
            why = (
                f"no weights in {folder}"
                if not models
                else f"no compact model in {folder} for the CPU"
                if not cuda
                else f"no usable model in {folder}"
            )
            warnings.append(f"upscale auto: {why}; {left} clip(s) left at their size")
    else:
        path = folder / model
        if not path.is_file():
            raise BadInput(f"no weights file {model!r} in {folder}")
        chosen = dict.fromkeys(range(len(jobs)), path)
    if chosen and not cuda:
        warnings.append(_cpu_warning([jobs[i] for i in chosen], set(chosen.values())))
    clips, cached = [], 0
    for i, weights in chosen.items():
        result, was_cached = _run_clip(jobs[i].path, weights)
        clips.append(result)
        cached += was_cached
    return UpscaleReport(
        clips=clips,
        models=sorted({p.name for p in chosen.values()}),
        device=label,
        where=where,
        cached=cached,
        warnings=warnings,
    )


def _cpu_warning(jobs: list[UpscaleJob], weights: set[Path]) -> str:
    """How long the CPU will take: one frame of each size timed, times the frames."""
    frames = sum(j.frames for j in jobs)
    seconds = 0.0
    per_size: dict[tuple[Path, int, int], float] = {}
    path = next(iter(weights))
    for job in jobs:
        key = (path, job.width, job.height)
        if key not in per_size:
            per_size[key] = _seconds_per_frame(_model(path), job.width, job.height)
        seconds += per_size[key] * job.frames
    names = ", ".join(sorted(p.name for p in weights))
    return (
        f"upscaling on the CPU (no GPU here): {len(jobs)} clip(s), {frames} frames with "
        f"{names}, about {_duration(seconds)}; a worker on the gpu pool makes this fast"
    )


def _seconds_per_frame(up: Upscaler, width: int, height: int) -> float:
    import torch

    from tasks.upscale import run_batch

    frame = torch.zeros((1, height, width, 3), dtype=torch.uint8, device=up.device)
    start = time.perf_counter()
    run_batch(up, frame)
    return time.perf_counter() - start


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    if seconds < 5400:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
