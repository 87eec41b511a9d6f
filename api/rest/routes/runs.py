"""Runs: create one (video, narration only, narration + subtitles), read, list, cancel,
review. The paths keep v1's `/tasks` and `task_id`; each is a run."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.rest.auth import Creator, Viewer
from api.rest.prefect import PrefectUnavailable
from api.rest.reconcile import current_state
from api.rest.runs import create_run
from api.rest.schemas import VideoRequest, inside_roots, readable_roots, run_out
from api.rest.services import Services, services
from blocks.catalog import Principal, VideoRow, get_video, list_videos, set_state
from spec.runs import ENDED, RunState
from spec.scenes import Storyboard, StoryboardEdit, StoryboardScene
from spec.service import Problem, ReviewIn, RunCreated, RunOut, RunPage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")
Svc = Annotated[Services, Depends(services)]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 422, 429, 503)
}


IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Repeat a request with the same key (say, after a timeout) and get the "
        "run the first one created instead of a second one.",
    ),
]


@router.post(
    "/videos", status_code=202, response_model=RunCreated, responses=ERRORS, tags=["create"]
)
async def create_video(
    spec: VideoRequest, who: Creator, svc: Svc, idempotency_key: IdempotencyKey = None
) -> RunCreated:
    """Render a video: a flow run of the `video` deployment. `task_id` is its flow run id."""
    return await create_run(svc, who, "video", spec, idempotency_key)


@router.post(
    "/audios", status_code=202, response_model=RunCreated, responses=ERRORS, tags=["create"]
)
async def create_audio(
    spec: VideoRequest, who: Creator, svc: Svc, idempotency_key: IdempotencyKey = None
) -> RunCreated:
    """Narration only: the script spoken, as a WAV file."""
    return await create_run(svc, who, "audio", spec, idempotency_key)


@router.post(
    "/subtitles", status_code=202, response_model=RunCreated, responses=ERRORS, tags=["create"]
)
async def create_subtitles(
    spec: VideoRequest, who: Creator, svc: Svc, idempotency_key: IdempotencyKey = None
) -> RunCreated:
    """Narration and its timed subtitles (SRT and ASS)."""
    return await create_run(svc, who, "subtitles", spec, idempotency_key)


def _visible(who: Principal, row: VideoRow | None) -> VideoRow:
    # Another owner's run answers exactly like a missing one: ids are not disclosed.
    if row is None or (who.role != "admin" and row.owner != who.owner):
        raise HTTPException(404, "no such run")
    return row


@router.get("/tasks/{task_id}", response_model=RunOut, responses=ERRORS, tags=["tasks"])
async def read_task(task_id: UUID, who: Viewer, svc: Svc, request: Request) -> RunOut:
    """State (queued, running, completed, failed, cancelled), progress, stage, error, URLs."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    return run_out(row, _prefix(request), state, svc.signer, svc.public_url)


@router.get("/tasks", response_model=RunPage, responses=ERRORS, tags=["tasks"])
async def list_runs(
    who: Viewer,
    svc: Svc,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    state: Annotated[RunState | None, Query(description="Only runs in this state.")] = None,
) -> RunPage:
    """The caller's runs (an admin's: everyone's), newest first, from the catalog."""
    owner = None if who.role == "admin" else who.owner
    async with svc.pool.connection() as conn:
        rows, total = await list_videos(conn, owner, limit, offset, state)
    current = await asyncio.gather(*(current_state(svc, r) for r in rows))
    prefix = _prefix(request)
    items = [run_out(r, prefix, s, svc.signer, svc.public_url) for r, s in current]
    return RunPage(items=items, total=total, limit=limit, offset=offset)


@router.delete(
    "/tasks/{task_id}",
    status_code=202,
    response_model=RunCreated,
    responses=ERRORS | {409: {"model": Problem}},
    tags=["tasks"],
)
async def cancel_task(task_id: UUID, who: Creator, svc: Svc) -> RunCreated:
    """Cancel a run that is still queued or running (409 when it has already ended)."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    if state in ENDED:
        raise HTTPException(409, f"run already {state}")
    try:
        cancelled = await svc.runs.cancel(task_id)
    except PrefectUnavailable:
        raise HTTPException(
            503, "the Prefect API is not answering; the run was not cancelled"
        ) from None
    if not cancelled:
        raise HTTPException(409, "run already ended")
    await current_state(svc, row)  # a run that never started is cancelled outright: record it
    return RunCreated(task_id=task_id, status="cancelled")


@router.post(
    "/tasks/{task_id}/review",
    status_code=202,
    response_model=RunOut,
    responses=ERRORS | {409: {"model": Problem}},
    tags=["tasks"],
)
async def review_run(
    task_id: UUID, decision: ReviewIn, who: Creator, svc: Svc, request: Request
) -> RunOut:
    """Approve (publish) or reject (drop) a video awaiting review; the run resumes."""
    row = await _waiting(svc, who, task_id, "review")
    return await _resume(svc, row, decision.model_dump(), request)


async def _waiting(svc: Services, who: Principal, task_id: UUID, stage: str) -> VideoRow:
    """The caller's run, suspended for a review of this kind ("review" or "storyboard")."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    if state != "awaiting_review":
        raise HTTPException(409, f"run is {state}, not awaiting review")
    if (row.stage or "review") != stage:
        other = (
            "its storyboard's review (PUT .../storyboard)"
            if stage == "review"
            else ("the review of the video (POST .../review)")
        )
        raise HTTPException(409, f"run awaits {other}")
    return row


async def _resume(
    svc: Services, row: VideoRow, decision: dict[str, Any], request: Request
) -> RunOut:
    try:
        refused = await svc.runs.resume(row.flow_run_id, decision)
    except PrefectUnavailable:
        raise HTTPException(503, "the Prefect API is not answering; nothing was decided") from None
    if refused:
        raise HTTPException(409, f"the run could not be resumed: {refused}")
    async with svc.pool.connection() as conn:
        await set_state(conn, row.flow_run_id, "queued")  # resumed: a worker picks it up again
        fresh = await get_video(conn, row.flow_run_id)
    return run_out(fresh or row, _prefix(request), None, svc.signer, svc.public_url)


@router.get(
    "/tasks/{task_id}/storyboard",
    response_model=Storyboard,
    responses=ERRORS | {409: {"model": Problem}},
    tags=["tasks"],
)
async def read_storyboard(task_id: UUID, who: Viewer, svc: Svc, request: Request) -> Storyboard:
    """Each scene: its time, words, terms, the clip it shows (with a signed still) and the
    candidates; `editable` while the run waits for the storyboard's review."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    scenes = await run_in_threadpool(_stored_scenes, svc, row, state)
    prefix = svc.public_url + _prefix(request)
    for scene in scenes:
        for clip in [scene.clip, *scene.candidates]:
            if clip.thumbnail:
                clip.thumbnail = svc.signer.url(prefix, clip.thumbnail)
    editable = state == "awaiting_review" and row.stage == "storyboard"
    return Storyboard(run_id=str(task_id), editable=editable, scenes=scenes)


@router.put(
    "/tasks/{task_id}/storyboard",
    status_code=202,
    response_model=RunOut,
    responses=ERRORS | {409: {"model": Problem}},
    tags=["tasks"],
)
async def change_storyboard(
    task_id: UUID, edit: StoryboardEdit, who: Creator, svc: Svc, request: Request
) -> RunOut:
    """Change scenes (another candidate, a clip of your own, new terms) and resume the run:
    it renders with the storyboard made again with the changes. No changes: as it is."""
    row = await _waiting(svc, who, task_id, "storyboard")
    scenes = await run_in_threadpool(_stored_scenes, svc, row, "awaiting_review")
    roots = readable_roots()
    for change in edit.scenes:
        if change.index >= len(scenes):
            raise HTTPException(422, f"there is no scene {change.index} (of {len(scenes)})")
        n = len(scenes[change.index].candidates)
        if change.candidate is not None and change.candidate >= n:
            raise HTTPException(
                422, f"scene {change.index} has {n} candidates; there is no {change.candidate}"
            )
        clip = change.clip
        if clip is not None and not (inside_roots(str(clip), roots) and clip.is_file()):
            raise HTTPException(422, f"scene {change.index}: clip must be an uploaded file")
    return await _resume(svc, row, edit.model_dump(mode="json"), request)


def _stored_scenes(svc: Services, row: VideoRow, state: str) -> list[StoryboardScene]:
    """The storyboard the run wrote: awaiting its review, storyboard.json; done, the
    manifest's scenes."""
    name = "storyboard" if row.stage == "storyboard" and state == "awaiting_review" else None
    if name is None and state == "completed":
        name = "manifest"
    rel = row.paths.get(name or "")
    if rel is None:
        raise HTTPException(409, f"run is {state}: it has no storyboard to show")
    try:
        data = json.loads((svc.output_root / rel).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise HTTPException(409, "the run's storyboard is not readable here") from None
    listed = data.get("scenes", []) if isinstance(data, dict) else data
    return [StoryboardScene.model_validate(s) for s in listed]


def _prefix(request: Request) -> str:
    return request.scope.get("root_path", "") + "/api/v1"
