"""`mpt review` and `mpt campaigns`: commands that talk to the running service over HTTP.

The service's address is MPT_API_URL (default http://127.0.0.1:8080, `make stack`'s) and the
key MPT_API_KEY (`mpt keys create --role creator`). Errors are one line: the facade's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api.cli.kit import fail

if TYPE_CHECKING:
    from api.client import Facade
    from spec.service import CampaignOut

T = TypeVar("T")


def call(use: Callable[[Facade], T]) -> T:
    """One call of the facade with MPT_API_KEY; its answer, or a one-line failure (exit 2 when
    the request was refused for what it asked, else 1)."""
    from api.client import Facade, FacadeError, api_url_from_env

    key = os.environ.get("MPT_API_KEY")
    if not key:
        raise fail("set MPT_API_KEY to a key of the service (mpt keys create --role creator)")
    try:
        return use(Facade(api_url_from_env(), key))
    except FacadeError as exc:
        prefix = f"{exc.status}: " if exc.status else ""
        raise fail(f"{prefix}{exc}", 2 if exc.bad_input else 1) from None


def review(
    run_id: Annotated[str, typer.Argument(help="The run awaiting review.")],
    approve: Annotated[bool, typer.Option("--approve", help="Publish it.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Drop it.")] = False,
    note: Annotated[str, typer.Option(help="Why, for the record.")] = "",
) -> None:
    """Approve or reject a video awaiting review (against the service)."""
    if approve == reject:
        raise fail("give --approve or --reject")
    run = call(lambda f: f.review(run_id, approve, note))
    typer.echo(f"{run.task_id}: {'approved' if approve else 'rejected'}; now {run.state}")


campaigns_app = typer.Typer(no_args_is_help=True, help="Scheduled campaigns of the service.")


@campaigns_app.command("add")
def campaigns_add(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON Lines: one video a row (read here).")
    ],
    cron: Annotated[str | None, typer.Option(help="A cron expression, e.g. '0 9 * * 1'.")] = None,
    interval: Annotated[int | None, typer.Option(help="Every N seconds instead.")] = None,
    rrule: Annotated[str | None, typer.Option(help="An RFC 5545 rule instead.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone.")] = "UTC",
    defaults: Annotated[
        Path | None, typer.Option(help="A JSON file of VideoSpec fields for every row.")
    ] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid")] = False,
    paused: Annotated[bool, typer.Option("--paused", help="Add it without running it.")] = False,
) -> None:
    """Schedule a campaign: FILE's rows, made on the schedule by the service's workers."""
    from api.cli.batch import _read_defaults
    from blocks.errors import BadInput
    from flows.campaign import read_file

    try:
        rows = read_file(file)
    except BadInput as exc:
        raise fail(str(exc)) from None
    schedule = {"cron": cron, "interval_s": interval, "rrule": rrule, "timezone": timezone}
    body = {
        "name": name,
        "rows": rows,
        "defaults": _read_defaults(defaults),
        "schedule": {k: v for k, v in schedule.items() if v is not None},
        "active": not paused,
        "skip_invalid": skip_invalid,
    }
    made = call(lambda f: f.add_campaign(body))
    typer.echo(f"campaign {made.name}: {made.rows} rows, {_when(made)}")


def _when(c: CampaignOut) -> str:
    s = c.schedule
    what = s.get("cron") or (f"every {s['interval_s']} s" if "interval_s" in s else s.get("rrule"))
    return f"{what} ({s.get('timezone', 'UTC')}), {'active' if c.active else 'paused'}"


@campaigns_app.command("list")
def campaigns_list() -> None:
    """The campaigns you own."""
    for c in call(lambda f: f.campaigns()):
        typer.echo(f"{c.name}\t{c.rows} rows\t{_when(c)}")


@campaigns_app.command("pause")
def campaigns_pause(name: Annotated[str, typer.Argument()]) -> None:
    """Stop running a campaign on its schedule (keep it)."""
    typer.echo(f"campaign {name}: {_when(call(lambda f: f.set_campaign(name, False)))}")


@campaigns_app.command("resume")
def campaigns_resume(name: Annotated[str, typer.Argument()]) -> None:
    """Run a paused campaign on its schedule again."""
    typer.echo(f"campaign {name}: {_when(call(lambda f: f.set_campaign(name, True)))}")


@campaigns_app.command("remove")
def campaigns_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a campaign and its schedule (the videos it made stay)."""
    call(lambda f: f.remove_campaign(name))
    typer.echo(f"campaign {name}: removed")
