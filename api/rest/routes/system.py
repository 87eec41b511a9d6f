"""Voices, health and metrics."""

from __future__ import annotations

import asyncio
import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.rest.auth import Viewer
from api.rest.metrics import CONTENT_TYPE
from api.rest.routes.runs import ERRORS
from api.rest.services import Services, services
from blocks.catalog import count_by_state
from blocks.tts import NETWORK_ENGINES
from spec.errors import first_error
from spec.service import HealthOut, ProviderCheckOut, ServiceConfig, VoiceOut, WhoAmI
from spec.video import VideoSpec

router = APIRouter(prefix="/api/v1", tags=["system"])
Svc = Annotated[Services, Depends(services)]


@router.get("/voices", response_model=list[VoiceOut], responses=ERRORS)
async def voices(who: Viewer) -> list[VoiceOut]:
    """Offline voices (always available); network engines take `ENGINE:NAME` voices too."""
    from tasks.narration import available_voices

    listed = await run_in_threadpool(available_voices)
    out = [VoiceOut(id=v.id, engine=v.engine, language=v.language, offline=True) for v in listed]
    out += [
        VoiceOut(id=f"{engine}:*", engine=engine, language="*", offline=False)
        for engine in sorted(NETWORK_ENGINES)
    ]
    return out


async def _postgres(svc: Services) -> str:
    await svc.ensure_migrated()
    async with svc.pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")
    return "ok"


async def _redis(svc: Services) -> str:
    await svc.redis.ping()
    return "ok"


async def _storage(svc: Services) -> str:
    def probe() -> None:
        svc.output_root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=svc.output_root, prefix=".health-"):
            pass

    await run_in_threadpool(probe)
    return "ok"


async def _check(name: str, coro: object, timeout_s: float) -> tuple[str, str]:
    try:
        async with asyncio.timeout(timeout_s):
            return name, await coro  # type: ignore[misc]
    except TimeoutError:
        return name, f"no answer in {timeout_s:g} s"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return name, f"{type(exc).__name__}: {first_error(exc)}"[:200]


@router.get(
    "/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["system"]
)
async def health(svc: Svc) -> JSONResponse:
    """200 when PostgreSQL, Redis, the Prefect API and storage all answer; else 503 naming
    what failed."""
    results = await asyncio.gather(
        _check("postgres", _postgres(svc), 3),
        _check("redis", _redis(svc), 3),
        _check("prefect", svc.runs.healthy(), 5),
        _check("storage", _storage(svc), 3),
    )
    checks = dict(results)
    failed = [name for name, result in checks.items() if result != "ok"]
    body = HealthOut(status="unavailable" if failed else "ok", checks=checks, failed=failed)
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)


@router.get("/metrics", response_class=Response, tags=["system"])
async def metrics(svc: Svc) -> Response:
    """Prometheus text format: requests and latencies by route, runs by state."""
    try:
        async with svc.pool.connection(timeout=2) as conn:
            by_state = await count_by_state(conn)
    except Exception:  # noqa: BLE001 - request metrics are still worth serving
        by_state = {}
    return Response(svc.metrics.render(by_state), media_type=CONTENT_TYPE)


@router.get("/whoami", response_model=WhoAmI, responses=ERRORS)
async def whoami(who: Viewer) -> WhoAmI:
    """The caller's owner name and role (a client shows or hides what the role allows)."""
    return WhoAmI(owner=who.owner, role=who.role, key_id=who.key_id)


@router.get("/config", response_model=ServiceConfig, responses=ERRORS)
async def config(who: Viewer, svc: Svc) -> ServiceConfig:
    """The VideoSpec schema (fields, titles, bounds, defaults), the service's limits and
    whether a topic can be written by an LLM here."""
    limits = svc.settings.api
    return ServiceConfig(
        llm_configured=bool(svc.settings.llm.providers),  # no provider called (or loaded)
        limits={
            "max_topic_chars": limits.max_topic_chars,
            "max_script_chars": limits.max_script_chars,
            "max_video_count": limits.max_video_count,
            "max_upload_mb": limits.max_upload_mb,
            "max_batch_rows": limits.max_batch_rows,
        },
        spec_schema=VideoSpec.model_json_schema(),
    )


@router.get("/providers", response_model=list[ProviderCheckOut], responses=ERRORS)
async def providers(who: Viewer) -> list[ProviderCheckOut]:
    """Each configured network provider (LLMs, stock footage) called once: did it answer."""
    from blocks.checks import check_providers

    checks = await run_in_threadpool(check_providers)
    return [ProviderCheckOut(**r.model_dump()) for r in checks]
