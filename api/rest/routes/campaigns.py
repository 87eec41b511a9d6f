"""Scheduled campaigns: each a schedule on the `batch/batch` deployment whose parameters are
the campaign (slug = its name), so the Prefect UI lists it, runs it and shows its runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from pydantic import ValidationError

from api.rest.auth import Creator, Viewer
from api.rest.prefect import PrefectUnavailable
from api.rest.routes.runs import ERRORS
from api.rest.schemas import VideoRequest, inside_roots, readable_roots
from api.rest.services import Services, services
from blocks.batches import (
    CampaignRow,
    add_campaign,
    delete_campaign,
    get_campaign,
    list_campaigns,
    update_campaign,
)
from blocks.catalog import Principal
from blocks.errors import BadInput
from flows.batch import checked_rows
from flows.campaign import read_file
from spec.campaign import Campaign, problems_line
from spec.errors import first_error
from spec.service import CampaignIn, CampaignOut, CampaignPatch, Problem, ScheduleIn

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
Svc = Annotated[Services, Depends(services)]
BATCH_DEPLOYMENT = "batch/batch"


def prefect_schedule(schedule: ScheduleIn) -> Any:
    """Prefect's schedule object; 422 for a cron, rrule or time zone it does not take."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    try:
        if schedule.cron is not None:
            return CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        if schedule.interval_s is not None:
            return IntervalSchedule(
                interval=timedelta(seconds=schedule.interval_s), timezone=schedule.timezone
            )
        return RRuleSchedule(rrule=schedule.rrule or "", timezone=schedule.timezone)
    except (ValidationError, ValueError) as exc:
        raise HTTPException(422, f"schedule: {first_error(exc)}") from None


def _rows_of(body: CampaignIn, max_rows: int) -> list[dict[str, Any]]:
    if body.rows is not None:
        return body.rows
    assert body.file is not None
    if not inside_roots(body.file, readable_roots()):
        raise HTTPException(422, "file must be a path inside the service's storage roots")
    try:
        return read_file(Path(body.file), max_rows)
    except BadInput as exc:
        raise HTTPException(422, str(exc)) from None


def _checked(body: CampaignIn, who: Principal, max_rows: int) -> Campaign:
    rows = _rows_of(body, max_rows)
    if len(rows) > max_rows:
        raise HTTPException(422, f"the campaign has {len(rows)} rows; the limit is {max_rows}")
    campaign = Campaign(
        name=body.name,
        rows=rows,
        defaults=body.defaults,
        skip_invalid=body.skip_invalid,
        owner=who.owner,
    )
    try:
        _, problems = checked_rows(campaign, model=VideoRequest)
    except BadInput as exc:
        raise HTTPException(422, str(exc)) from None
    if problems and not body.skip_invalid:
        raise HTTPException(422, problems_line(problems))
    return campaign


def _out(row: CampaignRow) -> CampaignOut:
    return CampaignOut(
        name=row.name,
        owner=row.owner,
        active=row.active,
        schedule=row.schedule,
        rows=len(row.campaign.get("rows", [])),
        defaults=row.campaign.get("defaults", {}),
        created_at=row.created_at,
    )


def _prefect_down() -> HTTPException:
    return HTTPException(503, "the Prefect API is not answering; the campaign was not changed")


@router.post(
    "/campaigns",
    status_code=201,
    response_model=CampaignOut,
    responses=ERRORS | {409: {"model": Problem}},
)
async def add_campaign_route(body: CampaignIn, who: Creator, svc: Svc) -> CampaignOut:
    """A campaign that runs on its schedule: rows (or a file of them under the input roots),
    defaults, and a cron, interval or rrule with its time zone."""
    campaign = await run_in_threadpool(_checked, body, who, svc.settings.api.max_batch_rows)
    schedule = prefect_schedule(body.schedule)
    async with svc.pool.connection() as conn:
        if await get_campaign(conn, body.name) is not None:
            raise HTTPException(409, f"a campaign named {body.name!r} exists already")
    try:
        schedule_id = await svc.runs.add_schedule(
            BATCH_DEPLOYMENT,
            body.name,
            schedule,
            body.active,
            {"campaign": campaign.model_dump(mode="json")},
        )
    except PrefectUnavailable:
        raise _prefect_down() from None
    except ObjectNotFound:
        raise HTTPException(503, "the batch deployment is missing: run `make stack`") from None
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 409:
            raise HTTPException(409, f"a schedule named {body.name!r} exists already") from None
        raise
    row = CampaignRow(
        name=body.name,
        owner=who.owner,
        schedule_id=schedule_id,
        campaign=campaign.model_dump(mode="json"),
        schedule=body.schedule.model_dump(exclude_none=True),
        active=body.active,
        created_at=datetime.now(UTC),
    )
    async with svc.pool.connection() as conn:
        await add_campaign(conn, row)
        stored = await get_campaign(conn, body.name)
    return _out(stored or row)


async def _own(svc: Services, who: Principal, name: str) -> CampaignRow:
    async with svc.pool.connection() as conn:
        row = await get_campaign(conn, name)
    if row is None or (who.role != "admin" and row.owner != who.owner):
        raise HTTPException(404, "no such campaign")
    return row


@router.get("/campaigns", response_model=list[CampaignOut], responses=ERRORS)
async def list_campaigns_route(who: Viewer, svc: Svc) -> list[CampaignOut]:
    """The caller's campaigns (an admin's: everyone's)."""
    async with svc.pool.connection() as conn:
        rows = await list_campaigns(conn, None if who.role == "admin" else who.owner)
    return [_out(r) for r in rows]


@router.get("/campaigns/{name}", response_model=CampaignOut, responses=ERRORS)
async def read_campaign(name: str, who: Viewer, svc: Svc) -> CampaignOut:
    return _out(await _own(svc, who, name))


@router.patch("/campaigns/{name}", response_model=CampaignOut, responses=ERRORS)
async def change_campaign(name: str, body: CampaignPatch, who: Creator, svc: Svc) -> CampaignOut:
    """Pause (`active: false`), resume (`active: true`) or change the schedule."""
    row = await _own(svc, who, name)
    schedule = prefect_schedule(body.schedule) if body.schedule else None
    try:
        await svc.runs.update_schedule(BATCH_DEPLOYMENT, row.schedule_id, body.active, schedule)
    except PrefectUnavailable:
        raise _prefect_down() from None
    stored = body.schedule.model_dump(exclude_none=True) if body.schedule else row.schedule
    active = row.active if body.active is None else body.active
    async with svc.pool.connection() as conn:
        await update_campaign(conn, name, stored, active)
    return _out(row.model_copy(update={"schedule": stored, "active": active}))


@router.delete("/campaigns/{name}", status_code=204, responses=ERRORS)
async def remove_campaign(name: str, who: Creator, svc: Svc) -> None:
    """Remove the campaign and its schedule (videos it made stay)."""
    row = await _own(svc, who, name)
    try:
        await svc.runs.delete_schedule(BATCH_DEPLOYMENT, row.schedule_id)
    except PrefectUnavailable:
        raise _prefect_down() from None
    async with svc.pool.connection() as conn:
        await delete_campaign(conn, name)
