"""Downloading stock clips: bounded, resumable, validated, into a content-addressed cache.

Every request has connect and read timeouts, every file a size cap; a download cut off
midway resumes with an HTTP Range request (or restarts when the server ignores ranges); a
file that is not a video (by content type, then by probing it) is refused. Finished files
are named by the SHA-256 of their content, and an index maps each URL to its file, so the
same clip is fetched once however many videos use it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from blocks.calls import ProviderError, by_status, http_client
from blocks.errors import StageError
from tasks.files import sha256_file
from tasks.media import probe

log = logging.getLogger(__name__)
VIDEO_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def download(
    url: str, cache_dir: Path, max_bytes: int, timeout_s: float, attempts: int = 3
) -> Path:
    """The clip at `url` as a local, probed video file; ProviderError or StageError if not."""
    index = cache_dir / "index" / _url_key(url)
    if index.is_file():
        cached = cache_dir / index.read_text().strip()
        if cached.is_file():
            return cached
    part = cache_dir / "partial" / f"{_url_key(url)}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, part, max_bytes, timeout_s)
            break
        except ProviderError as exc:
            if exc.kind != "transient" or attempt == attempts:
                part.unlink(missing_ok=True)
                raise
            log.info("download %s: %s; resuming (attempt %d)", url, exc, attempt + 1)
    try:
        probe(part)
    except StageError as exc:
        part.unlink(missing_ok=True)
        raise StageError(f"downloaded file is not a video: {exc}") from None
    final = cache_dir / f"{sha256_file(part)}.mp4"
    os.replace(part, final)
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(final.name)
    return final


def _fetch(url: str, part: Path, max_bytes: int, timeout_s: float) -> None:
    """Fetch into `part`, resuming from what it holds; raise ProviderError if incomplete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
    try:
        with http_client().stream(
            "GET", url, headers=headers, timeout=timeout, follow_redirects=True
        ) as response:
            if response.status_code == 416 and have:  # we already hold all of it
                return
            if response.status_code not in (200, 206):
                raise by_status(response.status_code, f"download of {url}", response)
            ctype = response.headers.get("content-type", "").lower()
            if ctype and not ctype.startswith(VIDEO_TYPES):
                raise ProviderError("fatal", f"not a video ({ctype})")
            if response.status_code == 200:
                have = 0  # the server ignored our range: start over
            length = response.headers.get("content-length")
            expected = have + int(length) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise ProviderError("fatal", f"larger than the {max_bytes // 2**20} MB cap")
            with part.open("ab" if have else "wb") as fh:
                written = have
                for chunk in response.iter_bytes():  # as it arrives: a cut keeps the most
                    written += len(chunk)
                    if written > max_bytes:
                        raise ProviderError("fatal", f"larger than the {max_bytes // 2**20} MB cap")
                    fh.write(chunk)
    except httpx.TimeoutException:
        raise ProviderError("transient", "download timed out") from None
    except httpx.TransportError as exc:
        raise ProviderError("transient", f"download cut off ({type(exc).__name__})") from None
    if expected is not None and written < expected:
        raise ProviderError("transient", f"download cut off at {written} of {expected} bytes")


def download_all(
    urls: list[str], cache_dir: Path, max_bytes: int, timeout_s: float, concurrency: int
) -> dict[str, Path | str]:
    """Each URL's file, or the reason it failed; at most `concurrency` at a time."""

    def one(url: str) -> Path | str:
        try:
            return download(url, cache_dir, max_bytes, timeout_s)
        except (ProviderError, StageError, OSError) as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return dict(zip(urls, pool.map(one, urls), strict=True))
