"""`mpt`: make a video from the command line, offline.

Exit codes: 0 success; 1 a stage failed; 2 bad input (one line on stderr, before any work).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.tempserver import TemporaryPrefectAPI

# Before Prefect is imported (it reads its settings once): its console stays silent, so the
# user sees our progress and one-line errors, never a traceback, while every log record of
# the run (Prefect's and our stages') still goes to the Prefect API, the UI's Logs tab.
for _name, _value in {
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_DEBUG_LEVEL": "CRITICAL",
}.items():
    os.environ.setdefault(_name, _value)
logging.raiseExceptions = False  # a log record the API refused is not the user's problem
from api.batch_cli import batch  # noqa: E402
from api.clikit import (  # noqa: E402
    exit_interrupted,
    fail,
    interrupted_flag,
    no_heartbeats,
    on_interrupt,
)
from api.service_cli import campaigns_app, review  # noqa: E402
from api.upscale_cli import upscale  # noqa: E402
from blocks.settings import LOGGERS, export_prefect_defaults  # noqa: E402 - precedes prefect

export_prefect_defaults()
for _name in LOGGERS:  # until Prefect configures logging, nothing of ours reaches stderr
    logging.getLogger(_name).addHandler(logging.NullHandler())

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="MoneyPrinterTurbo++: a topic or script in, a finished short video out.",
    rich_markup_mode="rich",
)

# Help panels, in the order a person fills the form (the README's table and the Prefect
# UI's form group the options the same way).
SCRIPT, FRAME, CUTTING, TRANSITIONS = "Script", "Frame", "Footage and cutting", "Transitions"
VOICE, SUBTITLES, MUSIC, MIX, ENCODE, OUTPUT = (
    "Voice",
    "Subtitles",
    "Music",
    "Mix",
    "Encode",
    "Output",
)


def _opt(panel: str, text: str, *names: str) -> typer.models.OptionInfo:
    return typer.Option(*names, help=text, rich_help_panel=panel)


@app.command()
def make(
    topic: Annotated[
        str, typer.Argument(help="What the video is about.", rich_help_panel=SCRIPT)
    ] = "",
    script: Annotated[str | None, _opt(SCRIPT, "Narration text.")] = None,
    script_file: Annotated[Path | None, _opt(SCRIPT, "Read the narration from a file.")] = None,
    language: Annotated[str, _opt(SCRIPT, "'auto', 'en', 'zh', ...")] = "auto",
    aspect: Annotated[str, _opt(FRAME, "9:16, 16:9 or 1:1.")] = "9:16",
    resolution: Annotated[str, _opt(FRAME, "1080p, 720p or 540p.")] = "1080p",
    fps: Annotated[int, _opt(FRAME, "Frames per second.")] = 30,
    fit: Annotated[str, _opt(FRAME, "cover (crop) or contain.")] = "cover",
    background: Annotated[str, _opt(FRAME, "With --fit contain: blur or color.")] = "blur",
    background_color: Annotated[str, _opt(FRAME, "#RRGGBB.")] = "#000000",
    materials: Annotated[Path | None, _opt(CUTTING, "Folder of local clips/images.")] = None,
    clip_duration: Annotated[float, _opt(CUTTING, "Longest cut, seconds.")] = 4.0,
    clip_speed: Annotated[float, _opt(CUTTING, "Footage speed, 0.5 to 2.")] = 1.0,
    upscale: Annotated[
        str, _opt(CUTTING, "Footage smaller than the frame: none, auto or a weights file.")
    ] = "none",
    concat: Annotated[str, _opt(CUTTING, "random or sequential.")] = "random",
    video_count: Annotated[int, _opt(CUTTING, "Variants to render.")] = 1,
    transition: Annotated[
        str,
        _opt(
            TRANSITIONS,
            "none, fade, fadeblack, slideleft/right/up/down, wipeleft, zoomin, "
            "dissolve, circleopen or random.",
        ),
    ] = "none",
    transition_duration: Annotated[float, _opt(TRANSITIONS, "Seconds.")] = 0.5,
    voice: Annotated[str, _opt(VOICE, "See `mpt voices`.")] = "piper:en_US-joe-medium",
    speech_rate: Annotated[float, _opt(VOICE, "0.5 to 2.0.")] = 1.0,
    voice_volume: Annotated[float, _opt(VOICE, "0 to 2.")] = 1.0,
    pause: Annotated[float, _opt(VOICE, "Seconds between sentences.")] = 0.3,
    audio: Annotated[
        Path | None, _opt(VOICE, "Your recorded narration (timed by recognition).")
    ] = None,
    subtitles: Annotated[
        bool, _opt(SUBTITLES, "Burn subtitles in.", "--subtitles/--no-subtitles")
    ] = True,
    font: Annotated[str, _opt(SUBTITLES, "Font file or family.")] = "DejaVu Sans:bold",
    font_size: Annotated[int, _opt(SUBTITLES, "Pixels at 1080p.")] = 72,
    text_color: Annotated[str, _opt(SUBTITLES, "#RRGGBB.")] = "#FFFFFF",
    stroke_color: Annotated[str, _opt(SUBTITLES, "#RRGGBB.")] = "#000000",
    stroke_width: Annotated[float, _opt(SUBTITLES, "Pixels.")] = 4.0,
    position: Annotated[str, _opt(SUBTITLES, "top, center, bottom or custom.")] = "bottom",
    position_pct: Annotated[float, _opt(SUBTITLES, "With --position custom.")] = 75.0,
    max_lines: Annotated[int, _opt(SUBTITLES, "Lines per subtitle cue.")] = 2,
    box: Annotated[bool, _opt(SUBTITLES, "Box behind text.", "--box/--no-box")] = False,
    box_color: Annotated[str, _opt(SUBTITLES, "#RRGGBB.")] = "#000000",
    box_opacity: Annotated[float, _opt(SUBTITLES, "0 to 1.")] = 0.5,
    word_highlight: Annotated[bool, _opt(SUBTITLES, "Karaoke-style words.")] = False,
    highlight_color: Annotated[str, _opt(SUBTITLES, "#RRGGBB.")] = "#FFD700",
    music: Annotated[str, _opt(MUSIC, "FILE, 'random' or 'none'.")] = "none",
    music_volume: Annotated[float, _opt(MUSIC, "0 to 1.")] = 0.2,
    music_fade_out: Annotated[float, _opt(MUSIC, "Seconds at the end.")] = 2.0,
    duck: Annotated[bool, _opt(MUSIC, "Music under voice.", "--duck/--no-duck")] = True,
    tail: Annotated[float, _opt(MUSIC, "Seconds after the last word.")] = 0.0,
    loudness: Annotated[float, _opt(MIX, "Target LUFS of the mix.")] = -14.0,
    normalize: Annotated[
        bool, _opt(MIX, "Normalise loudness.", "--normalize/--no-normalize")
    ] = True,
    preset: Annotated[str, _opt(ENCODE, "x264 preset.")] = "veryfast",
    crf: Annotated[int, _opt(ENCODE, "x264 quality, lower is better.")] = 23,
    encoder: Annotated[
        str, _opt(ENCODE, "auto, libx264, h264_nvenc, h264_qsv or h264_vaapi.")
    ] = "auto",
    seed: Annotated[int | None, _opt(OUTPUT, "Reproducible random choices.")] = None,
    out: Annotated[Path | None, _opt(OUTPUT, "Output folder.")] = None,
    as_json: Annotated[bool, _opt(OUTPUT, "Print manifest.json only.", "--json")] = False,
) -> None:
    """Render a video from TOPIC or from --script / --script-file."""
    from api.tempserver import TemporaryPrefectAPI

    # Started first: validation below already imports Prefect, which must see its URL.
    server = TemporaryPrefectAPI()
    on_interrupt(server.kill)
    try:
        spec = _validated_spec(
            topic=topic,
            script=script,
            script_file=script_file,
            language=language,
            audio=audio,
            aspect=aspect,
            resolution=resolution,
            fit=fit,
            clip_duration=clip_duration,
            concat=concat,
            transition=transition,
            transition_duration=transition_duration,
            background=background,
            background_color=background_color,
            clip_speed=clip_speed,
            upscale=upscale,
            music_fade_out=music_fade_out,
            duck=duck,
            loudness=loudness if normalize else None,
            tail_s=tail,
            sentence_pause=pause,
            encoder=encoder,
            video_count=video_count,
            voice=voice,
            speech_rate=speech_rate,
            voice_volume=voice_volume,
            materials_dir=materials,
            music=music,
            music_volume=music_volume,
            seed=seed,
            preset=preset,
            crf=crf,
            fps=fps,
            subtitles={
                "enabled": subtitles,
                "font": font,
                "size": font_size,
                "color": text_color,
                "stroke_color": stroke_color,
                "stroke_width": stroke_width,
                "position": position,
                "custom_position_pct": position_pct,
                "word_highlight": word_highlight,
                "highlight_color": highlight_color,
                "box": box,
                "box_color": box_color,
                "box_opacity": box_opacity,
                "max_lines": max_lines,
            },
        )
        _run(spec, out, as_json, server)
    except (KeyboardInterrupt, Exception):
        if not interrupted_flag.is_set():
            raise
        server.stop()  # the run's end is recorded: its last logs and events go first
        exit_interrupted()
    finally:
        server.stop()


def _validated_spec(script: str | None, script_file: Path | None, **fields: object) -> object:
    from pydantic import ValidationError

    from flows.spec import VideoSpec, first_error

    if script is not None and script_file is not None:
        raise fail("give --script or --script-file, not both") from None
    if script_file is not None:
        try:
            script = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read script file {script_file}: {exc.strerror or exc}") from None
    try:
        return VideoSpec(script=script, **fields)
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


def _run(spec: object, out: Path | None, as_json: bool, server: TemporaryPrefectAPI) -> None:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from blocks.errors import BadInput
    from flows.progress import listening
    from flows.video import preflight, stages_for, video_flow

    try:
        preflight(spec)
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
            for name in stages_for(spec)
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
                result = video_flow(spec, out_dir=str(out) if out else None)
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
def mcp() -> None:
    """The MCP server over stdio, for desktop agents (key: MPT_API_KEY; service:
    MPT_API_URL, default http://127.0.0.1:8080)."""
    from api.mcp_server import main as serve

    serve([])


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
    from flows.spec import first_error

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
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
