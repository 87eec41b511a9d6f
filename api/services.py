"""What every request shares: the catalog pool, Redis, the Prefect client and the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from api.metrics import Metrics
from api.runs import Runs
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
    migrated: bool = False


def services(request: Request) -> Services:
    return request.app.state.services
