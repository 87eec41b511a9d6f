"""Batches, their rows and scheduled campaigns in the PostgreSQL catalog.

A batch is either rows posted together (`POST /batches`: the facade creates one video run
per row) or one run of a campaign's batch flow (which creates them itself and reports here).
Each row's task is an ordinary catalog video row, tagged with the batch's id.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from blocks.catalog import CREATED_SQL, QuietWriter, created_args

log = logging.getLogger(__name__)


class BatchRow(BaseModel):
    id: UUID
    owner: str | None
    name: str
    flow_run_id: UUID | None
    total: int
    created_at: datetime
    cancelled_at: datetime | None


class ItemRow(BaseModel):
    row: int
    task_id: UUID | None
    topic: str | None
    error: str | None
    state: str | None = None  # the task's state in the catalog (None: no task, invalid)
    progress: float | None = None
    paths: dict[str, str] | None = None
    task_error: str | None = None


class CampaignRow(BaseModel):
    name: str
    owner: str
    schedule_id: UUID
    campaign: dict[str, Any]
    schedule: dict[str, Any]
    active: bool
    created_at: datetime


# --- the facade (async) -----------------------------------------------------------------


async def create_batch(
    conn: psycopg.AsyncConnection,
    batch_id: UUID,
    owner: str,
    name: str,
    total: int,
    items: list[tuple[int, UUID | None, str | None, str | None]],
) -> None:
    """A batch and its rows: (row, task id or None, topic, error or None)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO mpt_catalog.batches (id, owner, name, total) VALUES (%s, %s, %s, %s)",
            (batch_id, owner, name, total),
        )
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO mpt_catalog.batch_items (batch_id, row, task_id, topic, error) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(batch_id, *item) for item in items],
            )


async def get_batch(conn: psycopg.AsyncConnection, batch_id: UUID) -> BatchRow | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, owner, name, flow_run_id, total, created_at, cancelled_at "
        "FROM mpt_catalog.batches WHERE id = %s",
        (batch_id,),
    )
    row = await cur.fetchone()
    return BatchRow(**row) if row else None


async def batch_items(conn: psycopg.AsyncConnection, batch_id: UUID) -> list[ItemRow]:
    """Each row with its task's state as the catalog has it."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT i.row, i.task_id, i.topic, i.error, v.state, v.progress, v.paths, "
        "v.error AS task_error FROM mpt_catalog.batch_items i "
        "LEFT JOIN mpt_catalog.videos v ON v.flow_run_id = i.task_id "
        "WHERE i.batch_id = %s ORDER BY i.row",
        (batch_id,),
    )
    return [ItemRow(**r) for r in await cur.fetchall()]


async def list_batches(
    conn: psycopg.AsyncConnection, owner: str | None, limit: int, offset: int
) -> tuple[list[BatchRow], int]:
    where, args = ("WHERE owner = %s", [owner]) if owner is not None else ("", [])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, owner, name, flow_run_id, total, created_at, cancelled_at "
        f"FROM mpt_catalog.batches {where} ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
        [*args, limit, offset],
    )
    rows = [BatchRow(**r) for r in await cur.fetchall()]
    cur2 = await conn.execute(f"SELECT count(*) FROM mpt_catalog.batches {where}", args)
    return rows, (await cur2.fetchone())[0]


async def mark_cancelled(conn: psycopg.AsyncConnection, batch_id: UUID) -> None:
    await conn.execute(
        "UPDATE mpt_catalog.batches SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = %s",
        (batch_id,),
    )


async def add_campaign(conn: psycopg.AsyncConnection, row: CampaignRow) -> None:
    await conn.execute(
        "INSERT INTO mpt_catalog.campaigns (name, owner, schedule_id, campaign, schedule, "
        "active) VALUES (%s, %s, %s, %s, %s, %s)",
        (
            row.name,
            row.owner,
            row.schedule_id,
            Jsonb(row.campaign),
            Jsonb(row.schedule),
            row.active,
        ),
    )


async def get_campaign(conn: psycopg.AsyncConnection, name: str) -> CampaignRow | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT name, owner, schedule_id, campaign, schedule, active, created_at "
        "FROM mpt_catalog.campaigns WHERE name = %s",
        (name,),
    )
    row = await cur.fetchone()
    return CampaignRow(**row) if row else None


async def list_campaigns(conn: psycopg.AsyncConnection, owner: str | None) -> list[CampaignRow]:
    where, args = ("WHERE owner = %s", [owner]) if owner is not None else ("", [])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT name, owner, schedule_id, campaign, schedule, active, created_at "
        f"FROM mpt_catalog.campaigns {where} ORDER BY created_at DESC",
        args,
    )
    return [CampaignRow(**r) for r in await cur.fetchall()]


async def update_campaign(
    conn: psycopg.AsyncConnection, name: str, schedule: dict[str, Any], active: bool
) -> None:
    await conn.execute(
        "UPDATE mpt_catalog.campaigns SET schedule = %s, active = %s WHERE name = %s",
        (Jsonb(schedule), active, name),
    )


async def delete_campaign(conn: psycopg.AsyncConnection, name: str) -> None:
    await conn.execute("DELETE FROM mpt_catalog.campaigns WHERE name = %s", (name,))


# --- a campaign's batch flow (sync) -------------------------------------------------------


class BatchReporter:
    """The batch flow's run as a batch in the catalog: its rows and their runs, owned by the
    campaign's owner. Like RunReporter, it never fails the run."""

    def __init__(self, url: str, batch_id: UUID, name: str, owner: str | None, total: int) -> None:
        self.batch_id, self.owner = batch_id, owner
        self.writer = QuietWriter(url)
        self.writer.write(
            "INSERT INTO mpt_catalog.batches (id, owner, name, flow_run_id, total) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (batch_id, owner, name, batch_id, total),
        )

    def item(self, row: int, task_id: UUID | None, topic: str, error: str | None) -> None:
        self.writer.write(
            "INSERT INTO mpt_catalog.batch_items (batch_id, row, task_id, topic, error) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (batch_id, row) DO UPDATE SET "
            "task_id = coalesce(EXCLUDED.task_id, mpt_catalog.batch_items.task_id), "
            "error = EXCLUDED.error",
            (self.batch_id, row, task_id, topic, error),
        )

    def run(self, run_id: UUID, spec: dict[str, Any], out_dir: str) -> None:
        """The row's video run, owned by the campaign's owner, before the run reports."""
        self.writer.write(
            CREATED_SQL, created_args(run_id, self.owner, "video", spec, out_dir, self.batch_id)
        )

    def close(self) -> None:
        self.writer.close()
