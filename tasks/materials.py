"""Where footage comes from, and what a video's footage is: local videos and images (named,
foldered and tagged, so a scene's words can find them), stock searches and downloads, and
procedural backgrounds drawn by ffmpeg (animated, seeded by a term) so a video can always be
made offline. Which clip each scene shows is `tasks.storyboard`'s choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from blocks.settings import get_settings
from tasks.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, probe

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


class Scene(BaseModel):
    """One scene of the storyboard: its words, their time, and the clips chosen for it."""

    index: int
    group: int = 0  # the script's scene it is (or is part of, when a long one was cut)
    sentences: list[int]  # indices into the narration's sentences
    text: str
    terms: list[str]
    start_s: float  # when its first word is spoken (0 for the first scene)
    end_s: float  # when the next scene begins (the narration's end for the last)
    candidates: list[int] = []  # indices into Materials.clips, best first
    picks: list[list[int]]  # per video variant: the clips its cuts show, in order
    reason: str = ""  # why its first clip was chosen

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Materials(BaseModel):
    """A video's footage: the clips, and the storyboard's scenes that show them."""

    clips: list[Clip]
    scenes: list[Scene]
    warnings: list[str] = []

    def files(self) -> list[Path]:
        return [c.path for c in self.clips if c.recipe is None]

    def shown(self) -> list[Clip]:
        """The clips some video shows (the others are candidates a reviewer may pick)."""
        picked = {k for scene in self.scenes for variant in scene.picks for k in variant}
        return [c for k, c in enumerate(self.clips) if k in picked]

    @classmethod
    def sequence(
        cls, clips: list[Clip], timelines: list[list[int]], duration_s: float = 1e9
    ) -> Materials:
        """Clips in play order (one order per variant) as a single scene: no storyboard."""
        scene = Scene(
            index=0,
            sentences=[],
            text="",
            terms=[],
            start_s=0.0,
            end_s=duration_s,
            picks=timelines,
        )
        return cls(clips=clips, scenes=[scene])


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[\W_]+", text.lower()) if len(t) > 1}


def clip_words(clip: Clip) -> set[str]:
    """What a clip is known to show: its file name, its folders' names under the materials
    folder and its tags (a sidecar .json's, a sidecar .txt's words, a stock site's)."""
    return _tokens(clip.path.stem) | _tokens(" ".join(clip.tags))


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
        tags = [str(t) for t in tags] if isinstance(tags, list) else []
        tags += [part for part in path.relative_to(folder).parent.parts]  # folder words
        text = path.with_suffix(".txt")
        if text.is_file():  # a caption or a list of words beside the file
            try:
                tags.append(text.read_text(encoding="utf-8")[:2000])
            except (OSError, UnicodeDecodeError):
                warnings.append(f"ignored unreadable {text.name}")
        clips.append(
            Clip(
                path=path.resolve(),
                kind=info.kind,
                width=info.width,
                height=info.height,
                duration_s=info.duration_s,
                source="local",
                tags=tags,
                license_url=meta.get("license_url"),
            )
        )
    return clips


def relevance(clip: Clip, terms: list[str]) -> int:
    words = clip_words(clip)
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


class StockSearch:
    """The configured stock sources, searched query by query. Each answer is cached (in Redis
    when configured, so a campaign asking for "coffee" fifty times searches once); a source
    without a key is skipped, and one that fails is reported in `warnings` and not asked
    again in this run: the worst case is the offline floor, never a failed run."""

    def __init__(self, providers: list[str], size: tuple[int, int], warnings: list[str]) -> None:
        from blocks.stock import SearchCache, orientation_of, stock_source

        settings = get_settings()
        self.size, self.warnings = size, warnings
        self.orientation = orientation_of(size)
        self.sources = []
        for name in providers:
            try:
                source = stock_source(name)
            except BadInput as exc:  # a saved block that is missing: like a bad key, a warning
                warnings.append(str(exc))
                log.warning("%s", exc)
                continue
            if source is not None:
                self.sources.append((name, source))
        self.cache = (
            SearchCache(settings.redis_url, settings.search_ttl_s) if self.sources else None
        )
        self.down: set[str] = set()
        self.requests = 0  # searches sent (not answered from the cache)

    def hits(self, query: str) -> list[Any]:
        """Every source's hits for `query`, long enough to cut from, best sources first."""
        from blocks.calls import ProviderError, with_retries
        from blocks.stock import MIN_DURATION_S

        settings = get_settings()
        found: list[Any] = []
        for name, source in self.sources:
            if name in self.down or self.cache is None:
                continue
            key = self.cache.key(  # the endpoint too: one name may stand for two servers
                name,
                term=query,
                orientation=self.orientation,
                size=list(self.size),
                endpoint=getattr(source, "base_url", ""),
            )
            hits = self.cache.get(key)
            if hits is None:
                self.requests += 1
                try:
                    hits = with_retries(
                        lambda s=source: s.search(query, self.orientation, self.size),
                        settings.llm_attempts,
                        settings.retry_base_delay_s,
                    )
                except ProviderError as exc:
                    self.warnings.append(f"{name} search failed: {exc}")
                    log.warning("%s search for %r failed: %s", name, query, exc)
                    self.down.add(name)  # down or refusing us: not asked again this run
                    continue
                self.cache.put(key, hits)
            found += [h for h in hits if h.duration_s >= MIN_DURATION_S]
        return found


def download_hits(hits: list[Any], warnings: list[str]) -> dict[str, Clip]:
    """The hits downloaded (at most a few at a time, each cached by URL), as clips by URL;
    one that fails is left out with a warning."""
    from tasks.downloads import download_all

    settings = get_settings()
    unique = list({h.download_url: h for h in hits}.values())
    files = download_all(
        [h.download_url for h in unique],
        settings.work_dir / "downloads",
        int(settings.download_max_mb * 2**20),
        settings.download_timeout_s,
        settings.download_concurrency,
    )
    clips = {}
    for hit in unique:
        got = files[hit.download_url]
        if isinstance(got, str):
            warnings.append(f"skipped {hit.source} clip {hit.id}: {got}")
            continue
        info = probe(got)
        clips[hit.download_url] = Clip(
            path=got,
            kind="video",
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            source=hit.source,
            tags=list(hit.tags),
            license_url=hit.license_url,
            author=hit.author,
            page_url=hit.page_url,
        )
    return clips
