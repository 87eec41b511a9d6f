"""What every request shares: the catalog pool, Redis, the Prefect client and the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from api.rest.metrics import Metrics
from api.rest.prefect import Runs
from api.rest.signing import Signer
from blocks.catalog import migrate
from blocks.settings import Settings


@dataclass
class Services:
    settings: Settings
    output_root: Path
    pool: AsyncConnectionPool
    redis: Redis
    runs: Runs
    metrics: Metrics
    database_url: str
    signer: Signer
    migrated: bool = False

    @property
    def public_url(self) -> str:
        """The facade's address for absolute links ('' for links relative to the request)."""
        return (self.settings.public_api_url or "").rstrip("/")

    async def ensure_migrated(self) -> None:
        """Apply the catalog's migrations if start-up could not (PostgreSQL was down)."""
        if not self.migrated:
            await run_in_threadpool(migrate, self.database_url)
            self.migrated = True


def services(request: Request) -> Services:
    return request.app.state.services
