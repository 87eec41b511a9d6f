"""Stock footage search: Pexels and Pixabay video APIs as Prefect blocks, with a response cache.

How each provider is called lives here and nowhere else. Searches are cached in Redis with a
TTL when `MPT_REDIS_URL` is set (in-process otherwise); a Redis that is down is bypassed, not
fatal. Downloading the chosen files is `tasks/downloads.py`. A source block saved in the
Prefect UI is named `block:NAME` in MPT_MATERIALS__PROVIDERS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, Literal

from prefect.blocks.core import Block
from pydantic import BaseModel, SecretStr, ValidationError

from blocks.calls import ProviderError, http_request
from blocks.errors import BadInput
from blocks.saved import digest, is_saved, load_saved, saved_label

log = logging.getLogger(__name__)

Orientation = Literal["portrait", "landscape", "square"]
MIN_DURATION_S = 2.0  # shorter clips make cuts too short to read


class StockClip(BaseModel):
    """One search hit, reduced to the rendition we would download and its credit."""

    source: str  # "pexels", "pixabay", or "block:NAME" for a saved block
    id: str
    page_url: str
    author: str
    license_url: str
    duration_s: float
    width: int
    height: int
    download_url: str
    tags: list[str] = []


def closest_above(
    renditions: list[tuple[int, int, str]], target: tuple[int, int]
) -> tuple[int, int, str] | None:
    """The smallest rendition at least as large as the frame, else the largest there is."""
    tw, th = target
    short_target = min(tw, th)
    big_enough = [r for r in renditions if min(r[0], r[1]) >= short_target]
    if big_enough:
        return min(big_enough, key=lambda r: r[0] * r[1])
    return max(renditions, key=lambda r: r[0] * r[1], default=None)


def _get_json(url: str, params: dict[str, Any], headers: dict[str, str], timeout_s: float) -> Any:
    response = http_request("GET", url, timeout_s, params=params, headers=headers)
    try:
        return response.json()
    except ValueError:
        raise ProviderError("transient", "response is not valid JSON") from None


class PexelsSource(Block):
    """Pexels' video search (a free API key from pexels.com/api)."""

    _block_type_name = "MPT Pexels videos"
    api_key: SecretStr
    base_url: str = "https://api.pexels.com"
    timeout_s: float = 20.0

    def search(
        self, term: str, orientation: Orientation, target: tuple[int, int], per_page: int = 15
    ) -> list[StockClip]:
        data = _get_json(
            f"{self.base_url.rstrip('/')}/videos/search",
            {"query": term, "orientation": orientation, "per_page": per_page, "page": 1},
            {"Authorization": self.api_key.get_secret_value()},
            self.timeout_s,
        )
        clips = []
        for video in data.get("videos") or []:
            try:
                files = [
                    (int(f["width"]), int(f["height"]), str(f["link"]))
                    for f in video.get("video_files") or []
                    if f.get("width")
                    and f.get("height")
                    and f.get("link")
                    and str(f.get("file_type", "video/mp4")).startswith("video/")
                ]
                best = closest_above(files, target)
                if best is None:
                    continue
                user = video.get("user") or {}
                clips.append(
                    StockClip(
                        source=saved_label(self, "pexels"),
                        id=str(video["id"]),
                        page_url=str(video.get("url", "")),
                        author=str(user.get("name", "")),
                        license_url="https://www.pexels.com/license/",
                        duration_s=float(video.get("duration") or 0),
                        width=best[0],
                        height=best[1],
                        download_url=best[2],
                    )
                )
            except (KeyError, TypeError, ValueError, ValidationError):
                continue  # one malformed hit does not spoil the others
        return clips


class PixabaySource(Block):
    """Pixabay's video search (a free API key from pixabay.com/api/docs)."""

    _block_type_name = "MPT Pixabay videos"
    api_key: SecretStr
    base_url: str = "https://pixabay.com/api"
    timeout_s: float = 20.0

    def search(
        self, term: str, orientation: Orientation, target: tuple[int, int], per_page: int = 20
    ) -> list[StockClip]:
        # Pixabay has no orientation filter for videos: ask for enough pixels, then filter.
        data = _get_json(
            f"{self.base_url.rstrip('/')}/videos/",
            {
                "key": self.api_key.get_secret_value(),
                "q": term[:100],
                "per_page": per_page,
                "safesearch": "true",
                "min_width": min(target),
                "min_height": min(target) * 9 // 16,
            },
            {},
            self.timeout_s,
        )
        clips = []
        for hit in data.get("hits") or []:
            try:
                videos = hit.get("videos") or {}
                files = [
                    (int(v["width"]), int(v["height"]), str(v["url"]))
                    for v in videos.values()
                    if v.get("url") and v.get("width")
                ]
                best = closest_above(files, target)
                if best is None or _orientation(best[0], best[1]) != orientation:
                    continue
                clips.append(
                    StockClip(
                        source=saved_label(self, "pixabay"),
                        id=str(hit["id"]),
                        page_url=str(hit.get("pageURL", "")),
                        author=str(hit.get("user", "")),
                        license_url="https://pixabay.com/service/license-summary/",
                        duration_s=float(hit.get("duration") or 0),
                        width=best[0],
                        height=best[1],
                        download_url=best[2],
                        tags=[t.strip() for t in str(hit.get("tags", "")).split(",") if t.strip()],
                    )
                )
            except (KeyError, TypeError, ValueError, ValidationError):
                continue
        return clips


def _orientation(w: int, h: int) -> Orientation:
    if abs(w - h) <= min(w, h) * 0.1:
        return "square"
    return "landscape" if w > h else "portrait"


def orientation_of(size: tuple[int, int]) -> Orientation:
    return _orientation(*size)


class SearchCache:
    """Search responses by (source, query): Redis with a TTL (shared by every worker), and a
    dict this process keeps (shared by its runs: a local campaign's rows search once)."""

    _process: dict[str, tuple[float, str]] = {}

    def __init__(self, redis_url: str | None, ttl_s: int = 24 * 3600) -> None:
        self.ttl_s = ttl_s
        self.local = SearchCache._process
        self.redis = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(
                redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )

    @staticmethod
    def key(source: str, **query: Any) -> str:
        blob = json.dumps(query, sort_keys=True, default=str)
        return f"mpt:search:{source}:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"

    def get(self, key: str) -> list[StockClip] | None:
        raw = None
        if self.redis is not None:
            raw = self._redis_call("get", key)
        if raw is None:
            hit = self.local.get(key)
            raw = hit[1] if hit and hit[0] > time.monotonic() else None
        if raw is None:
            return None
        try:
            return [StockClip.model_validate(c) for c in json.loads(raw)]
        except (ValueError, ValidationError):
            return None

    def put(self, key: str, clips: list[StockClip]) -> None:
        raw = json.dumps([c.model_dump() for c in clips])
        self.local[key] = (time.monotonic() + self.ttl_s, raw)
        if self.redis is not None:
            self._redis_call("set", key, raw, ex=self.ttl_s)

    def _redis_call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return getattr(self.redis, op)(*args, **kwargs)
        except redis.RedisError as exc:
            # A cache that is down must not stop a video: warn once, then do without it.
            log.warning("search cache: Redis unavailable (%s); continuing without it", exc)
            self.redis = None
            return None


StockSource = PexelsSource | PixabaySource
STOCK_BLOCK_TYPES = (PexelsSource, PixabaySource)
STOCK_PROVIDERS = ("pexels", "pixabay")


def stock_source(name: str) -> StockSource | None:
    """The source a name in MPT_MATERIALS__PROVIDERS stands for: `block:NAME` (a stock block
    saved on the Prefect server), or a built-in one from settings; None for a built-in without
    a key (skipped) and for names that are no stock source ("local")."""
    if is_saved(name):
        return load_saved(name, STOCK_BLOCK_TYPES, "stock footage")
    return source_from_settings(name) if name in STOCK_PROVIDERS else None


def stock_fingerprint(providers: list[str]) -> list[str]:
    """Each saved stock block's name and digest (part of the materials' cache key: an edited
    block searches anew); a block that cannot be loaded is left to the stage to report."""
    out = []
    for name in providers:
        if is_saved(name):
            try:
                out.append(f"{name}:{digest(load_saved(name, STOCK_BLOCK_TYPES, 'stock'))}")
            except BadInput:
                out.append(f"{name}:missing")
    return out


def source_from_settings(name: str) -> StockSource | None:
    """The configured block for `name`, or None when it has no key (it is then skipped)."""
    from blocks.settings import get_settings

    s = get_settings()
    cfg = getattr(s, name)
    if cfg.api_key is None:
        return None
    block = PexelsSource if name == "pexels" else PixabaySource
    return block(api_key=cfg.api_key, base_url=cfg.base_url, timeout_s=cfg.timeout_s)
