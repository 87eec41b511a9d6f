"""`mpt`: make a video from the command line, offline.

Exit codes: 0 success; 1 a stage failed; 2 bad input (one line on stderr, before any work).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from api.cli.tempserver import TemporaryPrefectAPI

# Before Prefect is imported (it reads its settings once): its console stays silent, so the
# user sees our progress and one-line errors, never a traceback, while every log record of
# the run (Prefect's and our stages') still goes to the Prefect API, the UI's Logs tab.
for _name, _value in {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_DEBUG_LEVEL": "CRITICAL",
}.items():
    os.environ.setdefault(_name, _value)
logging.raiseExceptions = False  # a log record the API refused is not the user's problem
from api.cli.batch import batch  # noqa: E402
from api.cli.kit import (  # noqa: E402
    exit_interrupted,
    fail,
    interrupted_flag,
    no_heartbeats,
    on_interrupt,
)
from api.cli.options import spec_fields, spec_options  # noqa: E402
from api.cli.service import campaigns_app, review  # noqa: E402
from api.cli.upscale import upscale  # noqa: E402
from blocks.settings import LOGGERS, export_prefect_defaults  # noqa: E402 - precedes prefect
from spec.errors import first_error  # noqa: E402
from spec.form import TITLES, Group  # noqa: E402
from spec.video import VideoSpec  # noqa: E402

export_prefect_defaults()
for _name in LOGGERS:  # until Prefect configures logging, nothing of ours reaches stderr
    logging.getLogger(_name).addHandler(logging.NullHandler())

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="MoneyPrinterTurbo++: a topic or script in, a finished short video out.",
    rich_markup_mode="markdown",
)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"mpt {version('moneyprinterturbo-plus')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("mpt (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_version,
            metavar="",
        ),
    ] = False,
) -> None:
    """MoneyPrinterTurbo++: a topic or script in, a finished short video out."""


def make_command(model: type[VideoSpec] = VideoSpec) -> Callable[..., None]:
    """`mpt make`: its options are `model`'s fields (api.cli.options), plus where the script
    comes from and where the video goes."""
    script_panel, output_panel = TITLES[Group.script], TITLES[Group.output]

    def make(
        ctx: typer.Context,
        topic: str = "",
        script_file: Path | None = None,
        out: Path | None = None,
        as_json: bool = False,
        **fields: Any,
    ) -> None:
        """Render a video from TOPIC, or from --script / --script-file."""
        from api.cli.tempserver import TemporaryPrefectAPI

        # Started first: validation below already imports Prefect, which must see its URL.
        server = TemporaryPrefectAPI()
        on_interrupt(server.kill)
        try:
            values = spec_fields(ctx, fields) | ({"topic": topic} if topic else {})
            spec = _validated_spec(model, values, script_file)
            _run(spec, out, as_json, server)
        except (KeyboardInterrupt, Exception):
            if not interrupted_flag.is_set():
                raise
            server.stop()  # the run's end is recorded: its last logs and events go first
            exit_interrupted()
        finally:
            server.stop()

    own = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "topic",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default="",
            annotation=Annotated[
                str,
                typer.Argument(help=model.model_fields["topic"].description),
            ],
        ),
        inspect.Parameter(
            "script_file",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(help="Read the script from a file.", rich_help_panel=script_panel),
            ],
        ),
        inspect.Parameter(
            "out",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None, typer.Option(help="Output folder.", rich_help_panel=output_panel)
            ],
        ),
        inspect.Parameter(
            "as_json",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                typer.Option(
                    "--json",
                    help="Print manifest.json only.",
                    metavar="",
                    rich_help_panel=output_panel,
                ),
            ],
        ),
    ]
    params = [*own[:2], *spec_options(model, skip={"topic"}), *own[2:]]
    # Typer reads the command's options from its signature.
    make.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    make.__annotations__ = {p.name: p.annotation for p in params}
    return make


app.command(
    "make",
    epilog="Each flag is a field of the video spec: --subtitles-stroke-color is the REST "
    "body's subtitles.stroke_color and a campaign's column of that name.",
)(make_command())


def _validated_spec(
    model: type[VideoSpec], fields: dict[str, Any], script_file: Path | None
) -> VideoSpec:
    from pydantic import ValidationError

    if fields.get("script") is not None and script_file is not None:
        raise fail("give --script or --script-file, not both") from None
    if script_file is not None:
        try:
            fields["script"] = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read script file {script_file}: {exc.strerror or exc}") from None
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise fail(first_error(exc)) from None


def _storage_ready() -> None:
    """With S3 storage, the results block saved before any run needs it."""
    from blocks.errors import StageError, TransientError
    from blocks.storage import ensure_result_block

    try:
        ensure_result_block()
    except (StageError, TransientError, ValueError) as exc:
        raise fail(f"storage: {exc}", code=1) from None


def _run(spec: VideoSpec, out: Path | None, as_json: bool, server: TemporaryPrefectAPI) -> None:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from blocks.errors import BadInput
    from flows.preflight import preflight
    from flows.progress import listening
    from flows.runs import run_here
    from spec.runs import stages_of

    try:
        spec = preflight(spec)
    except BadInput as exc:
        raise fail(str(exc)) from None
    try:
        server.wait()
    except RuntimeError as exc:
        raise fail(str(exc), code=1) from None
    _storage_ready()

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=not console.is_terminal,
    ) as bar:
        rows = {
            name: bar.add_task(f"{name:<10} waiting", total=1, start=False)
            for name in stages_of("video", spec.upscale)
        }

        def on_stage(stage: str, state: str, seconds: float) -> None:
            if state == "Progress":
                bar.update(rows[stage], description=f"{stage:<10} {seconds:.0%}")
                return
            if state == "Running":
                bar.start_task(rows[stage])
                bar.update(rows[stage], description=f"{stage:<10} running")
            else:
                bar.update(
                    rows[stage],
                    completed=1,
                    description=f"{stage:<10} {state.lower()} in {seconds:.1f} s",
                )
            if not console.is_terminal and not as_json and state != "Running":
                console.print(f"{stage}: {state} in {seconds:.1f} s")

        try:
            with listening(on_stage), no_heartbeats():
                result = run_here(spec, out_dir=str(out) if out else None, checked=True)
        except BadInput as exc:
            raise fail(str(exc)) from None
        except Exception as exc:  # the stage and reason, never a traceback
            raise fail(
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__, code=1
            ) from None

    manifest = result.model_dump(mode="json")  # what manifest.json holds
    if as_json:
        sys.stdout.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        return
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(
        f"[green]done:[/] {result.video} ({result.width}×{result.height}, "
        f"{result.duration_s:.1f} s)"
    )


@app.command()
def voices(
    provider: Annotated[
        str, typer.Option(help="offline (default), or a network engine: edge.")
    ] = "offline",
) -> None:
    """List voices: those available offline, or a network provider's."""
    if provider == "offline":
        from tasks.narration import available_voices

        for voice in available_voices():
            typer.echo(f"{voice.id}\t{voice.language}")
        return
    if provider != "edge":
        raise fail(f"cannot list {provider} voices; use --provider edge or offline")
    from blocks.calls import ProviderError
    from blocks.tts import EdgeTTS

    try:
        listed = EdgeTTS().voices()
    except ProviderError as exc:
        raise fail(f"edge voices unavailable: {exc}", code=1) from None
    for voice_id, locale in listed:
        typer.echo(f"{voice_id}\t{locale}")


app.command("batch")(batch)
app.command("upscale")(upscale)


@app.command()
def mcp(
    http: Annotated[
        bool, typer.Option("--http", help="Streamable HTTP at /mcp instead of stdio.", metavar="")
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: the address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --http: the port.")] = 8081,
) -> None:
    """The MCP server for agents: stdio (key: MPT_API_KEY), or streamable HTTP (each
    request's X-API-Key); the service at MPT_API_URL (default http://127.0.0.1:8080)."""
    from api.mcp.server import main as serve

    serve(["--http", "--host", host, "--port", str(port)] if http else [])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port.")] = 8080,
) -> None:
    """The REST facade (api.rest.app): PostgreSQL, Redis and a Prefect server from the
    MPT_* and PREFECT_API_URL settings; /docs has its OpenAPI pages."""
    import uvicorn

    uvicorn.run("api.rest.app:create_app", factory=True, host=host, port=port, log_level="warning")


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port.")] = 8501,
) -> None:
    """The web UI (Streamlit), a client of the facade at MPT_WEBUI__API_URL (default
    http://127.0.0.1:8080)."""
    import importlib.util
    import tomllib

    # Found, not imported: the web UI is a program of its own, run by Streamlit.
    found = importlib.util.find_spec("webui")
    folder = Path(found.origin).parent if found and found.origin else None
    if folder is None or not (folder / "app.py").is_file():
        raise fail("the web UI (package webui) is not installed", 1)
    config = tomllib.loads((folder / "streamlit.toml").read_text(encoding="utf-8"))
    flags = [f"--{section}.{k}={v}" for section, kv in config.items() for k, v in kv.items()]
    flags += [f"--server.address={host}", f"--server.port={port}"]
    args = [sys.executable, "-m", "streamlit", "run", str(folder / "app.py"), *flags]
    os.execv(sys.executable, args)


app.command("review")(review)
app.add_typer(campaigns_app, name="campaigns")

providers_app = typer.Typer(no_args_is_help=True, help="Configured network providers.")
app.add_typer(providers_app, name="providers")


@providers_app.command("check")
def providers_check() -> None:
    """Call each configured provider once (LLMs, stock footage) and show which answered."""
    from rich.console import Console
    from rich.table import Table

    from blocks.checks import check_providers

    results = check_providers()
    if not results:
        raise fail("no providers configured (set MPT_LLM__PROVIDERS or MPT_MATERIALS__PROVIDERS)")
    table = Table("provider", "kind", "answered", "seconds", "detail")
    for r in results:
        table.add_row(
            r.provider, r.kind, "yes" if r.answered else "no", f"{r.seconds:.2f}", r.detail
        )
    answered = sum(r.answered for r in results)
    Console().print(table)
    if not answered:
        raise typer.Exit(1)


keys_app = typer.Typer(no_args_is_help=True, help="API keys of the REST service (admin).")
app.add_typer(keys_app, name="keys")


def _catalog_ready() -> None:
    """Migrate the catalog; one error line (exit 1) when PostgreSQL does not answer."""
    import psycopg

    from blocks.catalog import database_url, migrate

    try:
        migrate()
    except psycopg.Error as exc:
        raise fail(f"catalog unavailable at {database_url()}: {first_error(exc)}", 1) from None


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, creator or admin.")] = "creator",
    owner: Annotated[
        str | None, typer.Option(help="Whose tasks the key sees (default: its own id).")
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    if role not in ("viewer", "creator", "admin"):
        raise fail(f"unknown role '{role}'; valid roles: viewer, creator, admin")
    if owner is not None and not (1 <= len(owner) <= 100 and owner.isprintable()):
        raise fail("owner must be 1 to 100 printable characters")
    from blocks.catalog import create_key

    _catalog_ready()
    key_id, key = create_key(role, owner)
    typer.echo(key)
    typer.echo(f"key {key_id} ({role}) created; it is shown only now", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """Keys by id, owner and role (never the keys themselves)."""
    from blocks.catalog import list_keys

    _catalog_ready()
    for row in list_keys():
        revoked = f"\trevoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else ""
        typer.echo(f"{row.id}\t{row.owner}\t{row.role}\t{row.created_at:%Y-%m-%d %H:%M}{revoked}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The id `keys list` shows.")]) -> None:
    """Revoke a key: it answers 401 from then on."""
    from blocks.catalog import revoke_key

    _catalog_ready()
    if not revoke_key(key_id):
        raise fail(f"no active key with id {key_id}")
    typer.echo(f"key {key_id} revoked")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:  # a usage error (bad flag or value): one line
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        message = " ".join(message.replace("Value error, ", "").split())
        typer.echo(f"error: {message}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
