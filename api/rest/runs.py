"""Starting runs for the facade: the rate limit, then a flow run of a deployment, recorded in
the catalog under its owner. The routes for single tasks and for batches both use it."""

from __future__ import annotations

import json
import logging
from typing import Any
from uuid import UUID

from fastapi import HTTPException
from prefect.exceptions import ObjectNotFound

from api.ratelimit import RedisError, retry_after
from api.runs import PrefectUnavailable
from api.services import Services
from blocks.catalog import Kind, Principal, RunState, get_video, record_created

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


async def start_run(
    svc: Services,
    who: Principal,
    kind: Kind,
    spec: dict[str, Any],
    idempotency: list[Any] | None = None,
    batch_id: UUID | None = None,
) -> tuple[UUID, RunState]:
    """A new run of the kind's deployment, recorded under the caller; with `idempotency`
    seen before, the run it made then. 503 when Prefect does not answer."""
    parameters = {"spec": spec, "output": kind}
    # Scoped to the owner (as a JSON list, so no owner name can forge another's key).
    key = json.dumps([who.owner, *idempotency]) if idempotency else None
    tags = ["api", f"owner:{who.owner}"] + ([f"batch:{batch_id}"] if batch_id else [])
    try:
        run_id = await svc.runs.create(kind, parameters, tags=tags, idempotency_key=key)
    except PrefectUnavailable:
        raise HTTPException(
            503, "the Prefect API is not answering, so no run was created; try again later"
        ) from None
    except ObjectNotFound:
        raise HTTPException(
            503, f"the {kind} deployment is missing on the Prefect server: run `make stack`"
        ) from None
    if key:
        async with svc.pool.connection() as conn:
            seen = await get_video(conn, run_id)
        if seen is not None:
            if seen.owner != who.owner:
                raise HTTPException(409, "this Idempotency-Key belongs to another request")
            return run_id, seen.state
    try:
        async with svc.pool.connection() as conn:
            await record_created(
                conn, run_id, who.owner, kind, spec, str(svc.output_root / str(run_id)), batch_id
            )
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
