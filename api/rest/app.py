"""The REST facade: `uvicorn --factory api.rest.app:create_app` (or `mpt serve`). Routes
live under /api/v1.

It creates flow runs of the deployments in prefect.yaml and answers from the catalog; it
never renders anything itself, so it stays small and fast however busy the workers are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from redis.asyncio import Redis

from api.rest.limits import BodyLimitMiddleware
from api.rest.metrics import Metrics, MetricsMiddleware
from api.rest.prefect import PrefectUnavailable, Runs
from api.rest.reconcile import reconcile_forever
from api.rest.routes import batches, campaigns, files, runs, system, uploads
from api.rest.services import Services
from api.rest.signing import Signer
from blocks.catalog import database_url, migrate
from blocks.settings import get_settings
from spec.errors import first_error

log = logging.getLogger("api")
DEFAULT_PREFECT_API = "http://127.0.0.1:4200/api"


def create_app(prefect_api_url: str | None = None) -> FastAPI:
    """The app, configured from MPT_* settings (request validation reads the same ones)."""
    settings = get_settings()
    prefect_api_url = prefect_api_url or os.environ.get("PREFECT_API_URL") or DEFAULT_PREFECT_API
    db_url = settings.database_url or database_url()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrated = True
        try:
            await asyncio.to_thread(migrate, db_url)
        except psycopg.Error as exc:
            # Keep serving: /health says what is wrong and migrations run when it answers.
            log.error("catalog not ready (PostgreSQL): %s", first_error(exc))
            migrated = False
        pool = AsyncConnectionPool(
            db_url, min_size=2, max_size=10, timeout=5, open=False, kwargs={"autocommit": True}
        )
        await pool.open(wait=False)
        redis = Redis.from_url(
            settings.redis_url or "redis://127.0.0.1:6379/0",
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        output_root = settings.output_root.expanduser().resolve()
        output_root.mkdir(parents=True, exist_ok=True)
        async with Runs(
            prefect_api_url, settings.api.prefect_timeout_s, settings.api.state_ttl_s
        ) as runs:
            app.state.services = Services(
                settings=settings,
                output_root=output_root,
                pool=pool,
                redis=redis,
                runs=runs,
                metrics=metrics,
                database_url=db_url,
                signer=Signer(
                    key.get_secret_value().encode() if (key := settings.api.signing_key) else None,
                    settings.api.signed_url_ttl_s,
                ),
                migrated=migrated,
            )
            svc = app.state.services
            every = settings.api.reconcile_every_s
            reconciler = asyncio.create_task(reconcile_forever(svc, every)) if every else None
            try:
                yield
            finally:
                if reconciler is not None:
                    reconciler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reconciler
                await pool.close()
                await redis.aclose()

    # The docs page's JavaScript and CSS are served from the package, not a CDN: /docs works
    # on a machine with no network, like everything else here.
    app = FastAPIOffline(
        title="MoneyPrinterTurbo++",
        version="1",
        summary="Short videos from a topic or a script: create runs, follow them, fetch files.",
        lifespan=lifespan,
    )
    for module in (runs, batches, campaigns, uploads, files, system):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": first_error(exc)}, status_code=422)

    @app.exception_handler(psycopg.Error)
    @app.exception_handler(PoolTimeout)
    async def _catalog_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("catalog error: %s", first_error(exc))
        return JSONResponse({"detail": "the catalog (PostgreSQL) is not answering"}, 503)

    @app.exception_handler(PrefectUnavailable)
    async def _prefect_down(request: Request, exc: PrefectUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log; the client gets one line.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, 500)

    # Outermost first: metrics see every answer, including a refused body.
    upload_bytes = int(settings.api.max_upload_mb * 2**20) + 64 * 1024  # the file and its form
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        larger={
            p: upload_bytes for p in ("/api/v1/batches", "/api/v1/campaigns", "/api/v1/uploads")
        },
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
