"""Batches: many videos in one request, as JSON rows or an uploaded CSV/Parquet/JSONL file.

Every row is checked before anything starts; each valid row becomes a run of the `video`
deployment (any worker of the `cpu` pool takes it), recorded in the catalog with the batch.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.rest.auth import Creator, Viewer
from api.rest.routes.runs import ERRORS
from api.rest.runs import cancel_quietly, check_rate, start_run
from api.rest.schemas import VideoRequest
from api.rest.services import Services, services
from blocks.batches import (
    BatchRow,
    ItemRow,
    batch_items,
    create_batch,
    get_batch,
    list_batches,
    mark_cancelled,
)
from blocks.catalog import Principal, set_state
from blocks.errors import BadInput
from flows.batch import checked_rows
from flows.campaign import format_of, read_rows
from spec.campaign import Campaign, RowProblem, problems_line
from spec.errors import first_error
from spec.runs import ENDED
from spec.service import (
    BatchCheck,
    BatchCreated,
    BatchIn,
    BatchItemOut,
    BatchOut,
    BatchPage,
    Problem,
    RowProblemOut,
)

router = APIRouter(prefix="/api/v1", tags=["batches"])
Svc = Annotated[Services, Depends(services)]

_BODIES = {
    "requestBody": {
        "content": {
            "application/json": {"schema": BatchIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "defaults": {"type": "string", "description": "A JSON object."},
                        "name": {"type": "string"},
                        "skip_invalid": {"type": "boolean"},
                    },
                }
            },
        },
        "required": True,
    }
}


async def _batch_in(request: Request, svc: Services) -> BatchIn:
    """The request's rows: a JSON body, or a multipart upload of a file of rows."""
    limits = svc.settings.api
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise HTTPException(422, "a multipart batch needs its rows as a file field 'file'")
        data = await upload.read()
        if len(data) > limits.max_upload_mb * 2**20:
            raise HTTPException(422, f"the file is larger than {limits.max_upload_mb:g} MB")
        try:
            rows = await run_in_threadpool(
                read_rows, data, format_of(upload.filename), limits.max_batch_rows
            )
            defaults = json.loads(str(form.get("defaults") or "{}"))
        except BadInput as exc:
            raise HTTPException(422, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, f"defaults is not a JSON object: {exc}") from None
        fields: dict[str, Any] = {"rows": rows, "defaults": defaults}
        if form.get("name"):
            fields["name"] = str(form.get("name"))
        fields["skip_invalid"] = str(form.get("skip_invalid", "")).lower() in ("1", "true", "on")
    else:
        try:
            fields = await request.json()
        except ValueError:
            raise HTTPException(422, "the body is neither JSON nor a multipart upload") from None
    try:
        body = BatchIn.model_validate(fields)
    except ValidationError as exc:
        raise HTTPException(422, first_error(exc)) from None
    if len(body.rows) > limits.max_batch_rows:
        raise HTTPException(
            422, f"the batch has {len(body.rows)} rows; the limit is {limits.max_batch_rows}"
        )
    return body


def _checked(body: BatchIn, owner: str) -> tuple[Campaign, list, list[RowProblem]]:
    """Rows as specs (the service's limits and roots apply) and the problems of the others;
    422 for a batch with an unknown column."""
    campaign = Campaign(
        name=body.name,
        rows=body.rows,
        defaults=body.defaults,
        skip_invalid=body.skip_invalid,
        owner=owner,
    )
    try:
        valid, problems = checked_rows(campaign, model=VideoRequest)
    except BadInput as exc:
        raise HTTPException(422, str(exc)) from None
    return campaign, valid, problems


@router.post("/batches/check", response_model=BatchCheck, responses=ERRORS, openapi_extra=_BODIES)
async def check_batch(request: Request, who: Creator, svc: Svc) -> BatchCheck:
    """Every row checked as POST /batches would check it, and nothing made: each problem
    with its row, field and reason (a form shows them before anything starts)."""
    body = await _batch_in(request, svc)
    _, valid, problems = await run_in_threadpool(_checked, body, who.owner)
    return BatchCheck(
        rows=len(body.rows),
        valid=len(valid),
        problems=[RowProblemOut(row=p.row, field=p.field, message=p.message) for p in problems],
    )


@router.post(
    "/batches",
    status_code=202,
    response_model=BatchCreated,
    responses=ERRORS,
    openapi_extra=_BODIES,
)
async def create_batch_route(request: Request, who: Creator, svc: Svc) -> BatchCreated:
    """Many videos at once: JSON `{rows, defaults, name, skip_invalid}` or a multipart upload
    of a CSV, Parquet or JSON Lines file. Every row is checked first: by default one bad row
    refuses the batch (422 naming it); with `skip_invalid` the good rows are made."""
    body = await _batch_in(request, svc)
    campaign, valid, problems = await run_in_threadpool(_checked, body, who.owner)
    if problems and not body.skip_invalid:
        raise HTTPException(422, problems_line(problems))
    if not valid:
        raise HTTPException(422, "no valid row to make")
    await check_rate(svc, who)
    batch_id = uuid4()
    # One at a time: a Prefect server on SQLite serialises its writes, and concurrent creates
    # only queue there (87 ms a run one by one; slower two at a time).
    tasks: dict[int, UUID] = {}
    try:
        for number, spec in valid:
            tasks[number], _ = await start_run(
                svc, who, "video", spec.model_dump(mode="json"), [str(batch_id), number], batch_id
            )
    except BaseException:  # all or nothing: a half-made batch is taken back
        for run_id in tasks.values():
            await cancel_quietly(svc, run_id)
        raise
    items = [
        (n, tasks[n], _topic(row), None) for n, row in enumerate(campaign.rows, 1) if n in tasks
    ]
    items += [(p.row, None, _topic(campaign.rows[p.row - 1]), p.line()) for p in problems]
    async with svc.pool.connection() as conn:
        await create_batch(conn, batch_id, who.owner, body.name, len(campaign.rows), items)
    out = [
        BatchItemOut(
            row=n, task_id=task, state="invalid" if error else "queued", topic=topic, error=error
        )
        for n, task, topic, error in sorted(items, key=lambda i: i[0])
    ]
    return BatchCreated(batch_id=batch_id, items=out)


def _topic(row: dict[str, Any]) -> str:
    return " ".join(str(row.get("topic") or row.get("script") or "").split())[:60]


def _visible(who: Principal, batch: BatchRow | None) -> BatchRow:
    if batch is None or (who.role != "admin" and batch.owner != who.owner):
        raise HTTPException(404, "no such batch")
    return batch


def _item_out(item: ItemRow, prefix: str, svc: Services) -> BatchItemOut:
    urls, signed = {}, {}
    if item.state in ("completed", "awaiting_review"):
        for name, rel in (item.paths or {}).items():
            urls[name] = f"{prefix}/stream/{rel}"
            signed[name] = svc.signer.url(svc.public_url + prefix, rel)
    return BatchItemOut(
        row=item.row,
        task_id=item.task_id,
        state=item.state or ("invalid" if item.error else "queued"),
        progress=item.progress,
        topic=item.topic,
        urls=urls,
        signed_urls=signed,
        error=item.error or item.task_error,
    )


async def _batch_out(svc: Services, batch: BatchRow, prefix: str) -> BatchOut:
    async with svc.pool.connection() as conn:
        items = [_item_out(i, prefix, svc) for i in await batch_items(conn, batch.id)]
    counts: dict[str, int] = {}
    for item in items:
        counts[item.state] = counts.get(item.state, 0) + 1
    return BatchOut(
        batch_id=batch.id,
        name=batch.name,
        created_at=batch.created_at,
        cancelled=batch.cancelled_at is not None,
        total=batch.total,
        counts=counts,
        items=items,
    )


@router.get("/batches/{batch_id}", response_model=BatchOut, responses=ERRORS)
async def read_batch(batch_id: UUID, who: Viewer, svc: Svc, request: Request) -> BatchOut:
    """Counts by state and each row: its run, state, progress, URLs or error."""
    async with svc.pool.connection() as conn:
        batch = _visible(who, await get_batch(conn, batch_id))
    return await _batch_out(svc, batch, _prefix(request))


@router.get("/batches", response_model=BatchPage, responses=ERRORS)
async def list_batches_route(
    who: Viewer,
    svc: Svc,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> BatchPage:
    """The caller's batches (an admin's: everyone's), newest first."""
    owner = None if who.role == "admin" else who.owner
    async with svc.pool.connection() as conn:
        batches, total = await list_batches(conn, owner, limit, offset)
    prefix = _prefix(request)
    items = [await _batch_out(svc, b, prefix) for b in batches]
    return BatchPage(items=items, total=total, limit=limit, offset=offset)


@router.delete(
    "/batches/{batch_id}",
    status_code=202,
    response_model=BatchOut,
    responses=ERRORS | {409: {"model": Problem}},
)
async def cancel_batch(batch_id: UUID, who: Creator, svc: Svc, request: Request) -> BatchOut:
    """Cancel every row that has not finished (queued, running or awaiting review)."""
    async with svc.pool.connection() as conn:
        batch = _visible(who, await get_batch(conn, batch_id))
        items = await batch_items(conn, batch.id)
    for item in items:
        if item.task_id is not None and (item.state or "queued") not in ENDED:
            await cancel_quietly(svc, item.task_id)
            async with svc.pool.connection() as conn:
                await set_state(conn, item.task_id, "cancelled")
    async with svc.pool.connection() as conn:
        await mark_cancelled(conn, batch.id)
        fresh = await get_batch(conn, batch.id)
    return await _batch_out(svc, fresh or batch, _prefix(request))


def _prefix(request: Request) -> str:
    return request.scope.get("root_path", "") + "/api/v1"
