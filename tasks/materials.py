"""Materials stage: the clips each video is cut from.

Local videos and images are ranked by how well their names and sidecar tags match the search
terms; when they cannot cover the narration, procedural backgrounds are generated with
ffmpeg (animated, seeded by the term) so a video can always be made offline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from blocks.settings import get_settings
from spec.options import Concat
from tasks.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, probe
from tasks.stage import stage

log = logging.getLogger(__name__)

# Beyond this many generated clips the timeline reuses them rather than generating more.
MAX_PROCEDURAL = 12
MIN_CLIP_S = 0.5  # shorter local videos are too short to cut from


class Clip(BaseModel):
    path: Path
    kind: Literal["video", "image"]
    width: int
    height: int
    duration_s: float  # 0 for images: they last as long as a cut needs
    source: str  # "local", "procedural", "pexels", "pixabay"
    term: str | None = None
    tags: list[str] = []
    license_url: str | None = None
    author: str | None = None
    page_url: str | None = None
    recipe: str | None = None  # an ffmpeg lavfi source that draws the clip (procedural)

    def usable_s(self, clip_duration: float) -> float:
        return clip_duration if self.kind == "image" else min(clip_duration, self.duration_s)


class Materials(BaseModel):
    clips: list[Clip]
    timelines: list[list[int]]  # per video: indices into clips, in play order
    warnings: list[str] = []

    def files(self) -> list[Path]:
        return [c.path for c in self.clips if c.recipe is None]


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[\W_]+", text.lower()) if len(t) > 1}


def _sidecar(path: Path) -> dict:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable sidecar %s: %s", side.name, exc)
        return {}
    return data if isinstance(data, dict) else {}


def scan_folder(folder: Path, warnings: list[str]) -> list[Clip]:
    """Every readable video and image in `folder`; unreadable files are skipped with a warning."""
    clips = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            continue
        try:
            info = probe(path)
        except StageError as exc:
            msg = f"skipped {path.name}: {exc}"
            log.warning(msg)
            warnings.append(msg)
            continue
        if info.kind == "audio" or (info.kind == "video" and info.duration_s < MIN_CLIP_S):
            warnings.append(f"skipped {path.name}: no usable picture")
            continue
        meta = _sidecar(path)
        tags = meta.get("tags", [])
        clips.append(
            Clip(
                path=path.resolve(),
                kind=info.kind,
                width=info.width,
                height=info.height,
                duration_s=info.duration_s,
                source="local",
                tags=[str(t) for t in tags] if isinstance(tags, list) else [],
                license_url=meta.get("license_url"),
            )
        )
    return clips


def relevance(clip: Clip, terms: list[str]) -> int:
    words = _tokens(clip.path.stem) | _tokens(" ".join(clip.tags))
    return sum(len(_tokens(term) & words) for term in terms)


# Each recipe is an ffmpeg lavfi source; {w},{h},{d},{fps} and the rng-drawn values fill it.
def _procedural_source(
    rng: random.Random, w: int, h: int, d: float, fps: int
) -> tuple[str, int, int]:
    """The lavfi source of one background, and the size it draws at (the render scales it
    to the frame). Smooth fields (gradients, the soft Mandelbrot zoom) are drawn at a
    quarter of the frame: they look the same scaled up and cost a quarter to draw. Life
    steps ten times a second, not every frame: as smooth to the eye and far cheaper to
    encode than cells that flicker every frame."""

    def colour() -> str:
        return "0x{:02x}{:02x}{:02x}".format(*tuple(rng.randrange(30, 230) for _ in range(3)))

    qw, qh = w // 2 // 2 * 2, h // 2 // 2 * 2
    kind = rng.choice(["gradients", "radial", "mandelbrot", "life", "cellauto"])
    seed = rng.randrange(2**31)
    if kind in ("gradients", "radial"):
        gtype = "linear" if kind == "gradients" else "radial"
        return (
            f"gradients=s={qw}x{qh}:r={fps}:d={d}:n=3:type={gtype}:seed={seed}"
            f":speed={rng.uniform(0.01, 0.04):.3f}:c0={colour()}:c1={colour()}:c2={colour()}",
            qw,
            qh,
        )
    if kind == "mandelbrot":
        x, y = rng.choice([(-0.743643887, 0.131825904), (-0.1011, 0.9563), (-1.25066, 0.02012)])
        return (
            f"mandelbrot=s={qw}x{qh}:r={fps}:start_x={x}:start_y={y}:start_scale=3"
            f":end_scale={rng.uniform(0.05, 0.3):.3f}:end_pts={d * fps},"
            f"hue=h={rng.randrange(360)},trim=duration={d}",
            qw,
            qh,
        )
    if kind == "life":
        return (
            f"life=s={w // 4}x{h // 4}:r=10:seed={seed}:mold=12:ratio=0.3"
            f":life_color={colour()}:death_color={colour()}:mold_color={colour()},"
            f"scale={w}:{h}:flags=bicubic,gblur=sigma=6,fps={fps},trim=duration={d}",
            w,
            h,
        )
    return (
        f"cellauto=s={w // 4}x{h // 4}:r={fps}:rule={rng.choice([18, 30, 90, 110, 150])}"
        f":seed={seed}:random_fill_ratio=0.5:scroll=1,scale={w}:{h}:flags=bicubic,"
        f"gblur=sigma=4,colorchannelmixer=rr={rng.uniform(0.2, 1):.2f}"
        f":gg={rng.uniform(0.2, 1):.2f}:bb={rng.uniform(0.2, 1):.2f},trim=duration={d}",
        w,
        h,
    )


def generate_procedural(
    term: str, seed: int, size: tuple[int, int], duration: float, fps: int = 30
) -> Clip:
    """An animated background themed by `term`: the same term and seed give the same clip.

    Nothing is drawn here: the clip is its recipe, an ffmpeg source that the render draws
    inside its own graph (no file is encoded ahead and decoded again).
    """
    # Half the output size: these are soft abstract fields and the render scales them up.
    w = max(360, size[0] // 2) // 2 * 2
    h = round(w * size[1] / size[0]) // 2 * 2
    key = hashlib.sha256(f"{term}|{seed}|{w}x{h}|{duration}|{fps}".encode()).hexdigest()[:20]
    recipe, dw, dh = _procedural_source(random.Random(key), w, h, duration, fps)
    return Clip(
        path=Path("procedural") / key,
        kind="video",
        width=dw,
        height=dh,
        duration_s=duration,
        source="procedural",
        term=term,
        recipe=recipe,
    )


def fetch_stock(
    terms: list[str],
    needed_s: float,
    size: tuple[int, int],
    clip_duration: float,
    providers: list[str],
    warnings: list[str],
) -> list[Clip]:
    """Search each configured stock provider term by term and download enough footage.

    Providers without a key are skipped; a provider that fails is reported in `warnings`
    and the next one is tried, so the worst case is the offline floor, never a failed run.
    """
    from blocks.calls import ProviderError, with_retries
    from blocks.errors import BadInput
    from blocks.stock import MIN_DURATION_S, SearchCache, orientation_of, stock_source
    from tasks.downloads import download_all

    settings = get_settings()
    sources = []
    for n in providers:
        try:
            sources.append((n, stock_source(n)))
        except BadInput as exc:  # a saved block that is missing: like a rejected key, a warning
            warnings.append(str(exc))
            log.warning("%s", exc)
    sources = [(n, s) for n, s in sources if s is not None]
    if not sources or not terms:
        return []
    cache = SearchCache(settings.redis_url, settings.search_ttl_s)
    orientation = orientation_of(size)
    chosen: list[tuple[str, object]] = []  # (term, StockClip)
    seen: set[tuple[str, str]] = set()
    covered = 0.0
    results: dict[tuple[str, str], list] = {}
    for name, source in sources:
        for term in terms:
            key = cache.key(name, term=term, orientation=orientation, size=list(size))
            hits = cache.get(key)
            if hits is None:
                try:
                    hits = with_retries(
                        lambda s=source, t=term: s.search(t, orientation, size),
                        settings.llm_attempts,
                        settings.retry_base_delay_s,
                    )
                except ProviderError as exc:
                    warnings.append(f"{name} search failed: {exc}")
                    log.warning("%s search for %r failed: %s", name, term, exc)
                    break  # this provider is down or refuses us: try the next one
                cache.put(key, hits)
            results[(name, term)] = [h for h in hits if h.duration_s >= MIN_DURATION_S]
        # Round-robin over terms so every term gets footage before any term gets a second.
        queues = [list(results.get((name, t), [])) for t in terms]
        while covered < needed_s and len(chosen) < settings.max_stock_clips and any(queues):
            for term, queue in zip(terms, queues, strict=True):
                while queue:
                    hit = queue.pop(0)
                    if (hit.source, hit.id) not in seen:
                        seen.add((hit.source, hit.id))
                        chosen.append((term, hit))
                        covered += min(clip_duration, hit.duration_s)
                        break
        if covered >= needed_s:
            break
    if not chosen:
        return []
    files = download_all(
        [h.download_url for _, h in chosen],
        settings.work_dir / "downloads",
        int(settings.download_max_mb * 2**20),
        settings.download_timeout_s,
        settings.download_concurrency,
    )
    clips = []
    for term, hit in chosen:
        got = files[hit.download_url]
        if isinstance(got, str):
            warnings.append(f"skipped {hit.source} clip {hit.id}: {got}")
            continue
        info = probe(got)
        clips.append(
            Clip(
                path=got,
                kind="video",
                width=info.width,
                height=info.height,
                duration_s=info.duration_s,
                source=hit.source,
                term=term,
                tags=[term, *hit.tags],
                license_url=hit.license_url,
                author=hit.author,
                page_url=hit.page_url,
            )
        )
    return clips


def pick_materials(
    terms: list[str],
    duration_s: float,
    size: tuple[int, int],
    materials_dir: Path | None,
    clip_duration: float,
    concat: Concat,
    video_count: int,
    seed: int,
    fps: int = 30,
    providers: list[str] | None = None,
) -> Materials:
    warnings: list[str] = []
    if materials_dir is not None and not materials_dir.is_dir():
        # Checked where the run was made; this machine (a worker) may not have it.
        raise BadInput(f"materials folder does not exist: {materials_dir}")
    providers = ["local"] if providers is None else providers
    stock = fetch_stock(terms, duration_s, size, clip_duration, providers, warnings)
    scanned = scan_folder(materials_dir, warnings) if materials_dir else []
    if materials_dir and not scanned:
        msg = f"no usable clips in {materials_dir}; using procedural backgrounds"
        log.warning(msg)
        warnings.append(msg)
    local = stock + scanned
    ranked = sorted(local, key=lambda c: (-relevance(c, terms), c.path.name))
    clips = list(ranked)
    covered = sum(c.usable_s(clip_duration) for c in clips)
    if covered < duration_s:
        missing = math.ceil((duration_s - covered) / clip_duration)
        for i in range(min(missing, MAX_PROCEDURAL)):
            term = terms[i % len(terms)] if terms else "background"
            clips.append(generate_procedural(term, seed + i, size, clip_duration, fps))
    weights = [1 + relevance(c, terms) for c in clips]
    orders: list[list[int]] = []
    for v in range(video_count):
        order = _order(weights, concat, random.Random(seed + v))
        # Variants open on different clips while there are clips enough for that.
        used_first = {o[0] for o in orders}
        fresh = [k for k, i in enumerate(order) if i not in used_first]
        if fresh:
            order = order[fresh[0] :] + order[: fresh[0]]
        orders.append(order)
    timelines = [_timeline(clips, order, duration_s, clip_duration) for order in orders]
    sources = Counter(c.source for c in clips)
    log.info(
        "materials: %d clips (%s) for %.2f s in %d cuts",
        len(clips),
        ", ".join(f"{n} {src}" for src, n in sources.items()),
        duration_s,
        len(timelines[0]) if timelines else 0,
    )
    return Materials(clips=clips, timelines=timelines, warnings=warnings)


def _order(weights: list[int], concat: Concat, rng: random.Random) -> list[int]:
    """Sequential keeps the relevance ranking; random draws a weighted order
    (Efraimidis-Spirakis keys), so relevant clips still tend to come first."""
    order = list(range(len(weights)))
    if concat == Concat.random:
        order.sort(key=lambda i: -(rng.random() ** (1 / weights[i])))
    return order


def _timeline(
    clips: list[Clip], order: list[int], duration_s: float, clip_duration: float
) -> list[int]:
    """Clip indices in play order covering the duration; no clip twice before all are used."""
    timeline, total = [], 0.0
    while total < duration_s:
        for i in order:
            timeline.append(i)
            total += clips[i].usable_s(clip_duration)
            if total >= duration_s:
                break
    return timeline


@stage("materials")
def materials_stage(
    terms: list[str],
    duration_s: float,
    size: tuple[int, int],
    materials_dir: Path | None,
    clip_duration: float,
    concat: Concat,
    video_count: int,
    seed: int,
    fps: int,
    providers: list[str],
    saved: list[str] | None = None,
) -> Materials:
    # `providers` (names only, no keys) is an input so a new source means a new choice;
    # `saved`, the saved stock blocks' digests, so an edited block searches anew.
    return pick_materials(
        terms,
        duration_s,
        size,
        materials_dir,
        clip_duration,
        concat,
        video_count,
        seed,
        fps,
        providers,
    )
