"""Starting runs for the facade: the rate limit, the machine's checks (`flows.preflight`),
then a flow run of the kind's deployment (`flows.runs.NewRun`), recorded in the catalog under
its owner. The routes for single runs and for batches both use it."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from prefect.exceptions import ObjectNotFound

from api.rest.prefect import PrefectUnavailable
from api.rest.ratelimit import RedisError, retry_after
from api.rest.services import Services
from blocks.catalog import Principal, get_video, record_created
from blocks.errors import BadInput
from flows.preflight import preflight
from flows.runs import NewRun
from spec.runs import Kind, RunState
from spec.service import RunCreated
from spec.video import VideoSpec

log = logging.getLogger(__name__)


async def check_rate(svc: Services, who: Principal) -> None:
    """429 with Retry-After once the key has made its creates of this minute."""
    limit = svc.settings.api.rate_limit_per_min
    try:
        wait = await retry_after(svc.redis, who.key_id, limit)
    except (RedisError, OSError) as exc:
        svc.metrics.limiter_down.inc()
        log.warning("rate limit not checked, Redis did not answer: %s", exc)
        wait = None
    if wait is not None:
        svc.metrics.rate_limited.inc()
        raise HTTPException(
            429,
            f"rate limit reached: {limit} creates per minute; retry in {wait} s",
            {"Retry-After": str(wait)},
        )


async def create_run(
    svc: Services, who: Principal, kind: Kind, spec: VideoSpec, retry_key: str | None
) -> RunCreated:
    """One run from one request: 422 with the machine's one-line reason, 429 over the rate."""
    await check_rate(svc, who)
    try:
        spec = await run_in_threadpool(preflight, spec, kind, True)
    except BadInput as exc:
        raise HTTPException(422, str(exc)) from None
    run_id, state = await start_run(
        svc, who, kind, spec.model_dump(mode="json"), [retry_key] if retry_key else None
    )
    return RunCreated(task_id=run_id, status=state)


async def start_run(
    svc: Services,
    who: Principal,
    kind: Kind,
    spec: dict[str, Any],
    retry: list[Any] | None = None,
    batch_id: UUID | None = None,
) -> tuple[UUID, RunState]:
    """A new run of the kind's deployment, recorded under the caller; with `retry` parts
    seen before, the run it made then. 503 when Prefect does not answer."""
    new = NewRun(kind=kind, spec=spec, owner=who.owner, batch_id=batch_id, retry=retry)
    try:
        run_id = await svc.runs.create(new)
    except PrefectUnavailable:
        raise HTTPException(
            503, "the Prefect API is not answering, so no run was created; try again later"
        ) from None
    except ObjectNotFound:
        raise HTTPException(
            503, f"the {kind} deployment is missing on the Prefect server: run `make stack`"
        ) from None
    if new.idempotency_key:
        async with svc.pool.connection() as conn:
            seen = await get_video(conn, run_id)
        if seen is not None:
            if seen.owner != who.owner:
                raise HTTPException(409, "this Idempotency-Key belongs to another request")
            return run_id, seen.state
    try:
        async with svc.pool.connection() as conn:
            out_dir = str(svc.output_root / str(run_id))
            await record_created(conn, run_id, who.owner, kind, spec, out_dir, batch_id)
    except Exception:
        # A run nobody can see is worse than none: take it back before answering.
        await cancel_quietly(svc, run_id)
        raise
    svc.metrics.created.labels(kind).inc()
    return run_id, "queued"


async def cancel_quietly(svc: Services, run_id: UUID) -> None:
    try:
        await svc.runs.cancel(run_id)
    except Exception as exc:  # noqa: BLE001 - the caller's error is what matters
        log.error("could not cancel run %s: %s", run_id, exc)
