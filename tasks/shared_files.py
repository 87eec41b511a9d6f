"""Stage files between machines: with S3 storage, a stage's output files go up with its
result, and a worker that gets a cached result whose files it does not have (another
machine made them, under another work dir) fetches them instead of redoing the stage.

Files under the work dir are stored at `<prefix>/work/<path under the work dir>`; a result
made elsewhere names them under that machine's work dir, so each path is moved under ours
(`stages/…`, `procedural/…`, `downloads/…` keep their place) before it is fetched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from blocks import storage
from blocks.settings import get_settings
from tasks.files import atomic_path

log = logging.getLogger(__name__)

WORK_FOLDERS = ("stages", "procedural", "downloads")


def _files(result: Any) -> list[Path]:
    items = result if isinstance(result, list) else [result]
    return [p for item in items if hasattr(item, "files") for p in item.files()]


def share(result: Any) -> int:
    """Upload a finished stage's files under the work dir (no-op with local storage)."""
    if not storage.enabled():
        return 0
    sent = storage.upload_work_files(_files(result))
    if sent:
        log.info("uploaded %d stage file(s) to storage", sent)
    return sent


def _map_paths(value: Any, fn: Callable[[Path], Path]) -> Any:
    if isinstance(value, Path):
        return fn(value)
    if isinstance(value, BaseModel):
        update = {name: _map_paths(getattr(value, name), fn) for name in type(value).model_fields}
        return value.model_copy(update=update)
    if isinstance(value, list):
        return [_map_paths(v, fn) for v in value]
    if isinstance(value, tuple):
        return tuple(_map_paths(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_paths(v, fn) for k, v in value.items()}
    return value


def local_path(path: Path) -> Path:
    """Where a work-dir file made on another machine lives under this machine's work dir."""
    if not path.is_absolute() or path.exists():
        return path
    parts = path.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] in WORK_FOLDERS:
            return get_settings().work_dir / Path(*parts[i:])
    return path


def restore(result: Any) -> Any | None:
    """The result with its files under this work dir, fetched from storage where missing;
    None when storage is local or a file is in neither place."""
    if not storage.enabled():
        return None
    moved = _map_paths(result, local_path)
    for path in _files(moved):
        if path.is_file():
            continue
        key = storage.work_key(path)
        if key is None:
            return None
        try:
            with atomic_path(path) as tmp:
                if not storage.download(key, tmp):
                    raise FileNotFoundError(key)  # leaves no empty file in its place
        except FileNotFoundError:
            return None
        log.info("fetched %s from storage", path.name)
    return moved
