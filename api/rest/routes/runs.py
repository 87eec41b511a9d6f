"""Runs: create one (video, narration only, narration + subtitles), read, list, cancel."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import Creator, Viewer
from api.create import check_rate, start_run
from api.reconcile import current_state
from api.runs import PrefectUnavailable
from api.schemas import Problem, ReviewIn, TaskCreated, TaskOut, TaskPage, VideoRequest
from api.services import Services, services
from blocks.catalog import (
    TERMINAL,
    Kind,
    Principal,
    RunState,
    VideoRow,
    get_video,
    list_videos,
    set_state,
)
from blocks.errors import BadInput
from flows.video import preflight

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
        "task the first one created instead of a second run.",
    ),
]


async def _create(
    kind: Kind, spec: VideoRequest, who: Principal, svc: Svc, retry_key: str | None
) -> TaskCreated:
    await check_rate(svc, who)
    try:
        await run_in_threadpool(preflight, spec)
    except BadInput as exc:
        raise HTTPException(422, str(exc)) from None
    run_id, state = await start_run(
        svc, who, kind, spec.model_dump(mode="json"), [retry_key] if retry_key else None
    )
    return TaskCreated(task_id=run_id, status=state)


@router.post(
    "/videos", status_code=202, response_model=TaskCreated, responses=ERRORS, tags=["create"]
)
async def create_video(
    spec: VideoRequest, who: Creator, svc: Svc, idempotency_key: IdempotencyKey = None
) -> TaskCreated:
    """Render a video: a flow run of the `video` deployment. `task_id` is its flow run id."""
    return await _create("video", spec, who, svc, idempotency_key)


@router.post(
    "/audios", status_code=202, response_model=TaskCreated, responses=ERRORS, tags=["create"]
)
async def create_audio(
    spec: VideoRequest, who: Creator, svc: Svc, idempotency_key: IdempotencyKey = None
) -> TaskCreated:
    """Narration only: the script spoken, as a WAV file."""
    return await _create("audio", spec, who, svc, idempotency_key)


@router.post(
    "/subtitles", status_code=202, response_model=TaskCreated, responses=ERRORS, tags=["create"]
)
async def create_subtitles(
    spec: VideoRequest, who: Creator, svc: Svc, idempotency_key: IdempotencyKey = None
) -> TaskCreated:
    """Narration and its timed subtitles (SRT and ASS)."""
    return await _create("subtitles", spec, who, svc, idempotency_key)


def _visible(who: Principal, row: VideoRow | None) -> VideoRow:
    # Another owner's task answers exactly like a missing one: ids are not disclosed.
    if row is None or (who.role != "admin" and row.owner != who.owner):
        raise HTTPException(404, "no such task")
    return row


@router.get("/tasks/{task_id}", response_model=TaskOut, responses=ERRORS, tags=["tasks"])
async def read_task(task_id: UUID, who: Viewer, svc: Svc, request: Request) -> TaskOut:
    """State (queued, running, completed, failed, cancelled), progress, stage, error, URLs."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    return TaskOut.from_row(row, _prefix(request), state, svc.signer, svc.public_url)


@router.get("/tasks", response_model=TaskPage, responses=ERRORS, tags=["tasks"])
async def list_tasks(
    who: Viewer,
    svc: Svc,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    state: Annotated[RunState | None, Query(description="Only tasks in this state.")] = None,
) -> TaskPage:
    """The caller's tasks (an admin's: everyone's), newest first, from the catalog."""
    owner = None if who.role == "admin" else who.owner
    async with svc.pool.connection() as conn:
        rows, total = await list_videos(conn, owner, limit, offset, state)
    current = await asyncio.gather(*(current_state(svc, r) for r in rows))
    prefix = _prefix(request)
    items = [TaskOut.from_row(r, prefix, s, svc.signer, svc.public_url) for r, s in current]
    return TaskPage(items=items, total=total, limit=limit, offset=offset)


@router.delete(
    "/tasks/{task_id}",
    status_code=202,
    response_model=TaskCreated,
    responses=ERRORS | {409: {"model": Problem}},
    tags=["tasks"],
)
async def cancel_task(task_id: UUID, who: Creator, svc: Svc) -> TaskCreated:
    """Cancel a run that is still queued or running (409 when it has already ended)."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    if state in TERMINAL:
        raise HTTPException(409, f"task already {state}")
    try:
        cancelled = await svc.runs.cancel(task_id)
    except PrefectUnavailable:
        raise HTTPException(
            503, "the Prefect API is not answering; the task was not cancelled"
        ) from None
    if not cancelled:
        raise HTTPException(409, "task already ended")
    await current_state(svc, row)  # a run that never started is cancelled outright: record it
    return TaskCreated(task_id=task_id, status="cancelled")


@router.post(
    "/tasks/{task_id}/review",
    status_code=202,
    response_model=TaskOut,
    responses=ERRORS | {409: {"model": Problem}},
    tags=["tasks"],
)
async def review_task(
    task_id: UUID, decision: ReviewIn, who: Creator, svc: Svc, request: Request
) -> TaskOut:
    """Approve (publish) or reject (drop) a video awaiting review; the run resumes."""
    async with svc.pool.connection() as conn:
        row = _visible(who, await get_video(conn, task_id))
    row, state = await current_state(svc, row)
    if state != "awaiting_review":
        raise HTTPException(409, f"task is {state}, not awaiting review")
    try:
        refused = await svc.runs.resume(task_id, decision.model_dump())
    except PrefectUnavailable:
        raise HTTPException(503, "the Prefect API is not answering; nothing was decided") from None
    if refused:
        raise HTTPException(409, f"the run could not be resumed: {refused}")
    async with svc.pool.connection() as conn:
        await set_state(conn, task_id, "queued")  # resumed: its worker picks it up again
        fresh = await get_video(conn, task_id)
    return TaskOut.from_row(fresh or row, _prefix(request), None, svc.signer, svc.public_url)


def _prefix(request: Request) -> str:
    return request.scope.get("root_path", "") + "/api/v1"
