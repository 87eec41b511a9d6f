"""`mpt batch FILE`: a campaign's rows made on this machine, with a live table of rows.

Exit codes: 0 every row finished; 1 some rows failed (the report is written, each failure
listed in one line); 2 the file was refused (one line, nothing started).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from api.cli.kit import exit_interrupted, fail, interrupted_flag, no_heartbeats, on_interrupt


def _read_defaults(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"cannot read defaults {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise fail(f"defaults {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise fail(f"defaults {path} must be a JSON object of VideoSpec fields")
    return data


def batch(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines: one video a row.")],
    defaults: Annotated[
        Path | None, typer.Option(help="A JSON file of VideoSpec fields for every row.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Videos made at once.")] = 2,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Make the good rows, report the bad ones.")
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="The campaign's name (default: the file's name).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (default: the output root's folder of the campaign's name)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report only.")] = False,
) -> None:
    """Make a video for every row of FILE, reporting each row (report.csv, report.json)."""
    from api.cli.tempserver import TemporaryPrefectAPI

    server = TemporaryPrefectAPI()
    on_interrupt(server.kill)
    try:
        campaign = _campaign(file, defaults, concurrency, skip_invalid, name, out)
        try:
            server.wait()
        except RuntimeError as exc:
            raise fail(str(exc), code=1) from None
        from blocks.storage import ensure_result_block

        ensure_result_block()  # with S3 storage, before any run persists a result there
        report = _run(campaign, as_json)
    except (KeyboardInterrupt, Exception) as exc:
        if interrupted_flag.is_set():
            server.stop()
            exit_interrupted()
        if isinstance(exc, typer.Exit | KeyboardInterrupt):
            raise
        from blocks.errors import BadInput
        from spec.errors import first_error

        raise fail(first_error(exc), code=2 if isinstance(exc, BadInput) else 1) from None
    finally:
        server.stop()
    if as_json:
        data = report.model_dump(mode="json") | {"counts": report.counts}
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items()))
        typer.echo(f"done: {counts}; report in {report.out_dir}/report.csv", err=True)
    if report.failures:
        for row in report.failures:
            typer.echo(f"row {row.row} {row.state}: {row.error or ''}".rstrip(), err=True)
        raise typer.Exit(1)


def _campaign(
    file: Path,
    defaults: Path | None,
    concurrency: int,
    skip_invalid: bool,
    name: str | None,
    out: Path | None,
) -> object:
    from pydantic import ValidationError

    from blocks.errors import BadInput
    from blocks.settings import get_settings
    from flows.campaign import read_file
    from spec.campaign import Campaign, problems_line, validate_rows
    from spec.errors import first_error

    try:
        rows = read_file(file, get_settings().api.max_batch_rows)
        slug = re.sub(r"[^a-z0-9_-]+", "-", (name or file.stem).lower()).strip("-_") or "batch"
        campaign = Campaign(
            name=slug[:64],
            rows=rows,
            defaults=_read_defaults(defaults),
            concurrency=concurrency,
            skip_invalid=skip_invalid,
            out_dir=str(out) if out else None,
        )
        _, problems = validate_rows(campaign)
    except BadInput as exc:
        raise fail(str(exc)) from None
    except ValidationError as exc:
        raise fail(first_error(exc)) from None
    # The rows' shape is checked here, before a server starts; what they need of this
    # machine (files, voices; review needs the service) by the batch flow, once.
    if problems and not skip_invalid:
        raise fail(problems_line(problems))
    return campaign


def _run(campaign: object, as_json: bool) -> object:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from flows.batch import batch_flow, topic_of
    from flows.progress import current_row, listening

    console = Console(stderr=True)
    rows = {
        n: {"topic": topic_of(row), "state": "waiting", "stage": "", "progress": 0.0}
        for n, row in enumerate(campaign.rows, start=1)  # type: ignore[attr-defined]
    }

    def table() -> Table:
        t = Table("row", "topic", "state", "stage", "progress", expand=False)
        for n, r in rows.items():
            t.add_row(str(n), r["topic"][:40], r["state"], r["stage"], f"{r['progress']:.0%}")
        return t

    live = Live(table(), console=console, refresh_per_second=4, transient=as_json)
    started = time.monotonic()

    def on_event(stage: str, state: str, value: float) -> None:
        n = current_row()
        if n is None and stage == "row" and state == "invalid":
            n = int(value)
        if n is None or n not in rows:
            return
        r = rows[n]
        if stage == "row":
            r["state"], r["stage"] = state, "" if state != "running" else r["stage"]
            if state == "completed":
                r["progress"] = 1.0
            if not console.is_terminal and not as_json and state != "running":
                console.print(f"row {n}: {state} ({time.monotonic() - started:.0f} s)")
        elif state == "Progress":
            r["stage"], r["progress"] = stage, value
        elif state == "Running":
            r["stage"] = stage
        if console.is_terminal:
            live.update(table())

    if console.is_terminal:
        live.start()
    try:
        with listening(on_event), no_heartbeats():
            return batch_flow(campaign)
    finally:
        if console.is_terminal:
            live.stop()
