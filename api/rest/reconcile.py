"""Keeping catalog rows true to Prefect: a run that ended without reporting (killed,
cancelled, crashed, or its catalog was down) gets its final state written back, when it is
read and every few seconds in the background, so lists and /metrics do not go stale."""

from __future__ import annotations

import asyncio
import logging

from api.rest.prefect import PrefectUnavailable
from api.rest.services import Services
from blocks.catalog import VideoRow, get_video, open_videos, set_state
from spec.errors import first_error
from spec.runs import ENDED, RunState

log = logging.getLogger(__name__)


_FILE_NAMES = {
    "subtitles.srt": "srt",
    "subtitles.ass": "ass",
    "script.txt": "script",
    "manifest.json": "manifest",
}


def published_files(svc: Services, row: VideoRow) -> dict[str, str]:
    """Files in a finished run's folder, named as the flow names them, for a run whose flow
    could not report them (the catalog was down at the end of the run)."""
    folder = svc.output_root / str(row.flow_run_id)
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = _FILE_NAMES.get(path.name)
        if name is None and path.stem.startswith("narration"):
            name = "audio"
        elif name is None and path.suffix == ".mp4":
            name = path.stem.replace("-", "_")  # video, video_2, ...
        if name:
            found[name] = str(path.relative_to(svc.output_root))
    return found


async def current_state(svc: Services, row: VideoRow) -> tuple[VideoRow, RunState]:
    """The row with Prefect's word on a run still going; the catalog's when Prefect is down."""
    if row.state in ENDED:
        return row, row.state
    try:
        info = await svc.runs.info(row.flow_run_id)
    except PrefectUnavailable:
        return row, row.state
    if info is None:
        return row, row.state
    if not info.final:
        # The flow marks its own row running as it starts: that is news Prefect's cached
        # state may not have yet.
        if row.state == "running" and info.state == "queued":
            return row, "running"
        return row, info.state
    paths = published_files(svc, row) if info.state == "completed" and not row.paths else None
    error = info.message if info.state == "failed" else None
    async with svc.pool.connection() as conn:
        await set_state(conn, row.flow_run_id, info.state, error=error, paths=paths)
        fresh = await get_video(conn, row.flow_run_id)
    return (fresh or row), info.state


async def reconcile_open_runs(svc: Services, limit: int = 200) -> int:
    """Bring the oldest open rows up to date; returns how many ended."""
    await svc.ensure_migrated()
    async with svc.pool.connection() as conn:
        rows = await open_videos(conn, limit)
    ended = 0
    for row in rows:
        _, state = await current_state(svc, row)
        ended += state in ENDED
    return ended


async def reconcile_forever(svc: Services, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await reconcile_open_runs(svc)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("reconciling runs failed: %s", first_error(exc))
