"""The service catalog in PostgreSQL: API keys and one row per flow run.

Everything lives in the schema `mpt_catalog`, so the catalog can share a database with
Prefect's own server (whose tables go to `public`; a schema named like the login, `mpt`, would
catch them through PostgreSQL's default search_path "$user", public).

Migrations are the numbered SQL files in blocks/migrations, applied once each, in order, under
an advisory lock so two processes starting together do not race.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from blocks.settings import DEFAULT_DATABASE_URL, get_settings
from spec.runs import ENDED, Kind, RunState

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x6D7074  # "mpt": the advisory lock that serialises migrations

Role = Literal["viewer", "creator", "admin"]
# A row in one of these states never changes state again (for SQL).
ENDED_SQL = "(" + ", ".join(f"'{state}'" for state in sorted(ENDED)) + ")"
ROLES: tuple[Role, ...] = ("viewer", "creator", "admin")


class Principal(BaseModel):
    """Who is calling: the key's id, the owner its runs belong to, and its role."""

    key_id: str
    owner: str
    role: Role

    def may(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class KeyRow(BaseModel):
    id: str
    owner: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class VideoRow(BaseModel):
    flow_run_id: UUID
    owner: str | None
    kind: Kind
    spec: dict[str, Any]
    state: RunState
    progress: float
    stage: str | None
    error: str | None
    out_dir: str | None
    paths: dict[str, str]
    duration_s: float | None
    created_at: datetime
    finished_at: datetime | None
    review_note: str | None = None
    batch_id: UUID | None = None


def database_url() -> str:
    return get_settings().database_url or DEFAULT_DATABASE_URL


def migrate(url: str | None = None) -> list[str]:
    """Apply the migrations not yet applied; returns the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(url or database_url(), connect_timeout=5) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS mpt_catalog")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS mpt_catalog.schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT name FROM mpt_catalog.schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.name in done:
                continue
            conn.execute(path.read_text())
            conn.execute(
                "INSERT INTO mpt_catalog.schema_migrations (name) VALUES (%s)", (path.name,)
            )
            applied_now.append(path.name)
    return applied_now


# --- API keys -------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a plain digest is as strong as a slow password hash here
    # and keeps each request's lookup to one indexed query.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(role: Role, owner: str | None = None, url: str | None = None) -> tuple[str, str]:
    """A new key: returns (key id, the key). Only its hash is stored."""
    key_id = secrets.token_hex(4)
    key = f"mpt_{key_id}_{secrets.token_urlsafe(32)}"
    with psycopg.connect(url or database_url(), connect_timeout=5) as conn:
        conn.execute(
            "INSERT INTO mpt_catalog.api_keys (id, key_hash, owner, role) VALUES (%s, %s, %s, %s)",
            (key_id, hash_key(key), owner or key_id, role),
        )
    return key_id, key


def list_keys(url: str | None = None) -> list[KeyRow]:
    with psycopg.connect(url or database_url(), connect_timeout=5, row_factory=dict_row) as c:
        rows = c.execute(
            "SELECT id, owner, role, created_at, revoked_at FROM mpt_catalog.api_keys "
            "ORDER BY created_at"
        ).fetchall()
    return [KeyRow(**r) for r in rows]


def revoke_key(key_id: str, url: str | None = None) -> bool:
    with psycopg.connect(url or database_url(), connect_timeout=5) as conn:
        cur = conn.execute(
            "UPDATE mpt_catalog.api_keys SET revoked_at = now() "
            "WHERE id = %s AND revoked_at IS NULL",
            (key_id,),
        )
        return cur.rowcount == 1


_VIDEO_COLUMNS = (
    "flow_run_id, owner, kind, spec, state, progress, stage, error, out_dir, paths, "
    "duration_s, created_at, finished_at, review_note, batch_id"
)


# --- Async access for the facade ------------------------------------------------------------


async def principal_for(conn: psycopg.AsyncConnection, key: str) -> Principal | None:
    cur = await conn.execute(
        "SELECT id, owner, role FROM mpt_catalog.api_keys "
        "WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key),),
    )
    row = await cur.fetchone()
    return Principal(key_id=row[0], owner=row[1], role=row[2]) if row else None


# A run just created: its owner, what was asked, where it writes, its batch. The flow may
# already have reported (a very fast worker): its state stays, and what it could not know
# (owner, folder, batch) is added; a row that already has an owner keeps it.
CREATED_SQL = (
    "INSERT INTO mpt_catalog.videos (flow_run_id, owner, kind, spec, out_dir, batch_id) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (flow_run_id) DO UPDATE SET "
    "owner = coalesce(mpt_catalog.videos.owner, EXCLUDED.owner), "
    "out_dir = coalesce(mpt_catalog.videos.out_dir, EXCLUDED.out_dir), "
    "batch_id = coalesce(mpt_catalog.videos.batch_id, EXCLUDED.batch_id)"
)


def created_args(
    flow_run_id: UUID | str,
    owner: str | None,
    kind: Kind,
    spec: dict[str, Any],
    out_dir: str,
    batch_id: UUID | None = None,
) -> tuple[Any, ...]:
    return (flow_run_id, owner, kind, Jsonb(spec), out_dir, batch_id)


async def record_created(
    conn: psycopg.AsyncConnection,
    flow_run_id: UUID,
    owner: str,
    kind: Kind,
    spec: dict[str, Any],
    out_dir: str,
    batch_id: UUID | None = None,
) -> None:
    await conn.execute(CREATED_SQL, created_args(flow_run_id, owner, kind, spec, out_dir, batch_id))


async def get_video(conn: psycopg.AsyncConnection, flow_run_id: UUID) -> VideoRow | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_VIDEO_COLUMNS} FROM mpt_catalog.videos WHERE flow_run_id = %s", (flow_run_id,)
    )
    row = await cur.fetchone()
    return VideoRow(**row) if row else None


async def list_videos(
    conn: psycopg.AsyncConnection,
    owner: str | None,
    limit: int,
    offset: int,
    state: RunState | None = None,
) -> tuple[list[VideoRow], int]:
    """A page of runs, newest first; `owner` None lists everyone's (admin)."""
    conditions, args = [], []
    if owner is not None:
        conditions.append("owner = %s")
        args.append(owner)
    if state is not None:
        conditions.append("state = %s")
        args.append(state)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_VIDEO_COLUMNS} FROM mpt_catalog.videos {where} "
        "ORDER BY created_at DESC, flow_run_id LIMIT %s OFFSET %s",
        [*args, limit, offset],
    )
    rows = [VideoRow(**r) for r in await cur.fetchall()]
    cur2 = await conn.execute(f"SELECT count(*) FROM mpt_catalog.videos {where}", args)
    total = (await cur2.fetchone())[0]
    return rows, total


async def open_videos(conn: psycopg.AsyncConnection, limit: int) -> list[VideoRow]:
    """Runs not yet ended, oldest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_VIDEO_COLUMNS} FROM mpt_catalog.videos "
        f"WHERE state NOT IN {ENDED_SQL} ORDER BY created_at LIMIT %s",
        (limit,),
    )
    return [VideoRow(**r) for r in await cur.fetchall()]


async def set_state(
    conn: psycopg.AsyncConnection,
    flow_run_id: UUID,
    state: RunState,
    error: str | None = None,
    paths: dict[str, str] | None = None,
    duration_s: float | None = None,
) -> None:
    """A state learnt from Prefect; a terminal state never goes back."""
    terminal = state in ENDED
    await conn.execute(
        "UPDATE mpt_catalog.videos SET state = %s, error = coalesce(%s, error), "
        "paths = CASE WHEN %s::jsonb = '{}'::jsonb THEN paths ELSE %s::jsonb END, "
        "duration_s = coalesce(%s, duration_s), "
        "progress = CASE WHEN %s = 'completed' THEN 100 ELSE progress END, "
        "finished_at = CASE WHEN %s THEN coalesce(finished_at, now()) ELSE finished_at END "
        f"WHERE flow_run_id = %s AND state NOT IN {ENDED_SQL}",
        (
            state,
            error,
            Jsonb(paths or {}),
            Jsonb(paths or {}),
            duration_s,
            state,
            terminal,
            flow_run_id,
        ),
    )


async def count_by_state(conn: psycopg.AsyncConnection) -> dict[str, int]:
    cur = await conn.execute("SELECT state, count(*) FROM mpt_catalog.videos GROUP BY state")
    return {state: n for state, n in await cur.fetchall()}


# --- Sync reports from a running flow -------------------------------------------------------


class QuietWriter:
    """Writes to the catalog from a flow's process and never fails the run: a catalog that
    cannot be reached is logged once and then left alone (the facade reconciles its rows from
    Prefect's states when they are next read)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None
        self.broken = False

    def write(self, sql: str, args: tuple[Any, ...]) -> None:
        if self.broken:
            return
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.url, connect_timeout=3, autocommit=True)
            self.conn.execute(sql, args)
        except psycopg.Error as exc:
            log.warning("catalog not updated: %s", exc)
            self.broken = True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class RunReporter:
    """A flow run's progress and outcome, written to its catalog row from the flow's process."""

    def __init__(self, flow_run_id: str, kind: Kind, spec: dict[str, Any], url: str) -> None:
        self.flow_run_id = flow_run_id
        self.writer = QuietWriter(url)
        self.writer.write(
            "INSERT INTO mpt_catalog.videos (flow_run_id, kind, spec, state) VALUES (%s, %s, %s, "
            "'running') ON CONFLICT (flow_run_id) DO UPDATE SET state = 'running' "
            f"WHERE mpt_catalog.videos.state NOT IN {ENDED_SQL}",
            (flow_run_id, kind, Jsonb(spec)),
        )

    def progress(self, percent: float, stage: str | None) -> None:
        self.writer.write(
            "UPDATE mpt_catalog.videos SET progress = %s, stage = coalesce(%s, stage) "
            "WHERE flow_run_id = %s",
            (round(percent, 1), stage, self.flow_run_id),
        )

    def completed(
        self, out_dir: str, paths: dict[str, str], duration_s: float, note: str | None = None
    ) -> None:
        self.writer.write(
            "UPDATE mpt_catalog.videos SET state = 'completed', progress = 100, stage = 'publish', "
            "out_dir = %s, paths = %s, duration_s = %s, review_note = coalesce(%s, review_note), "
            "finished_at = now() WHERE flow_run_id = %s",
            (out_dir, Jsonb(paths), duration_s, note, self.flow_run_id),
        )

    def awaiting_review(self, out_dir: str, preview: dict[str, str], stage: str = "review") -> None:
        """Waiting for a reviewer: of the rendered video (its preview's files; stage "review")
        or of the storyboard (storyboard.json; stage "storyboard")."""
        self.writer.write(
            "UPDATE mpt_catalog.videos SET state = 'awaiting_review', stage = %s, "
            "out_dir = %s, paths = %s WHERE flow_run_id = %s",
            (stage, out_dir, Jsonb(preview), self.flow_run_id),
        )

    def resumed(self) -> None:
        """A review came in: the run goes on (its next stage reports progress)."""
        self.writer.write(
            "UPDATE mpt_catalog.videos SET state = 'running' "
            "WHERE flow_run_id = %s AND state = 'awaiting_review'",
            (self.flow_run_id,),
        )

    def rejected(self, note: str) -> None:
        """A reviewer said no: nothing is published, the preview is gone."""
        self.writer.write(
            "UPDATE mpt_catalog.videos SET state = 'rejected', review_note = %s, paths = '{}', "
            "finished_at = now() WHERE flow_run_id = %s",
            (note, self.flow_run_id),
        )

    def failed(self, error: str) -> None:
        self.writer.write(
            "UPDATE mpt_catalog.videos SET state = 'failed', error = %s, finished_at = now() "
            f"WHERE flow_run_id = %s AND state NOT IN {ENDED_SQL}",
            (error, self.flow_run_id),
        )

    def close(self) -> None:
        self.writer.close()
