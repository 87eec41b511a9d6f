"""`mpt`: make a video from the command line, offline.

Exit codes: 0 success; 1 a stage failed; 2 bad input (one line on stderr, before any work).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

# Before Prefect is imported (it reads its settings once): keep its console quiet so the
# user sees our progress and one-line errors, never a traceback; the run's full logs still
# go to the Prefect API for the UI. Telemetry off: it races the ephemeral server's SQLite.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
from blocks.settings import export_prefect_defaults  # noqa: E402 - must precede prefect

export_prefect_defaults()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="MoneyPrinterTurbo++: a topic or script in, a finished short video out.",
)


class _TemporaryPrefectAPI:
    """A temporary Prefect API server for one CLI run, started before Prefect is imported.

    Prefect starts the same server itself when no PREFECT_API_URL is set, but only once the
    flow runs, after importing its server code in this process (2-3 s) and then waiting for
    it (3-4 s). Starting it first lets that wait overlap our own imports and validation.
    With PREFECT_API_URL set (a running `prefect server`), nothing is started.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if os.environ.get("PREFECT_API_URL"):
            return
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = os.environ | {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.url = f"http://127.0.0.1:{port}/api"
        os.environ["PREFECT_API_URL"] = self.url

    def wait(self, timeout_s: float = 60) -> None:
        if self.proc is None:
            return
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode()[-300:]
                raise RuntimeError(f"the temporary Prefect server exited: {err.strip()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the temporary Prefect server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and "prefect" in sys.modules:
            # Send the run's last logs and events while the server is still there; after it
            # stops, Prefect's workers would retry for a minute and print connection errors.
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            for worker in (APILogWorker, EventsWorker):
                with contextlib.suppress(Exception):  # best effort on the way out
                    worker.drain_all(timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def make(
    topic: Annotated[str, typer.Argument(help="What the video is about.")] = "",
    script: Annotated[str | None, typer.Option(help="Narration text.")] = None,
    script_file: Annotated[
        Path | None, typer.Option(help="Read the narration from a file.")
    ] = None,
    audio: Annotated[
        Path | None, typer.Option(help="Your recorded narration (timed by recognition).")
    ] = None,
    language: Annotated[str, typer.Option(help="'auto', 'en', 'zh', ...")] = "auto",
    aspect: Annotated[str, typer.Option(help="9:16, 16:9 or 1:1.")] = "9:16",
    resolution: Annotated[str, typer.Option(help="1080p, 720p or 540p.")] = "1080p",
    fit: Annotated[str, typer.Option(help="cover or contain.")] = "cover",
    clip_duration: Annotated[float, typer.Option(help="Longest cut, seconds.")] = 4.0,
    concat: Annotated[str, typer.Option(help="random or sequential.")] = "random",
    transition: Annotated[
        str,
        typer.Option(
            help="none, fade, fadeblack, slideleft/right/up/down, wipeleft, zoomin, "
            "dissolve, circleopen or random."
        ),
    ] = "none",
    transition_duration: Annotated[float, typer.Option(help="Seconds.")] = 0.5,
    background: Annotated[str, typer.Option(help="With --fit contain: blur or color.")] = "blur",
    background_color: Annotated[str, typer.Option(help="#RRGGBB.")] = "#000000",
    clip_speed: Annotated[float, typer.Option(help="Footage speed, 0.5 to 2.")] = 1.0,
    video_count: Annotated[int, typer.Option(help="Variants to render.")] = 1,
    voice: Annotated[str, typer.Option(help="See `mpt voices`.")] = "piper:en_US-joe-medium",
    speech_rate: Annotated[float, typer.Option(help="0.5 to 2.0.")] = 1.0,
    voice_volume: Annotated[float, typer.Option(help="0 to 2.")] = 1.0,
    materials: Annotated[Path | None, typer.Option(help="Folder of local clips/images.")] = None,
    music: Annotated[str, typer.Option(help="FILE, 'random' or 'none'.")] = "none",
    music_volume: Annotated[float, typer.Option(help="0 to 1.")] = 0.2,
    music_fade_out: Annotated[float, typer.Option(help="Seconds at the end.")] = 2.0,
    duck: Annotated[bool, typer.Option("--duck/--no-duck", help="Music under voice.")] = True,
    loudness: Annotated[float, typer.Option(help="Target LUFS of the mix.")] = -14.0,
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize")] = True,
    tail: Annotated[float, typer.Option(help="Seconds after the last word.")] = 0.0,
    pause: Annotated[float, typer.Option(help="Seconds between sentences.")] = 0.3,
    subtitles: Annotated[bool, typer.Option("--subtitles/--no-subtitles")] = True,
    font: Annotated[str, typer.Option(help="Font file or family.")] = "DejaVu Sans:bold",
    font_size: Annotated[int, typer.Option(help="Pixels at 1080p.")] = 72,
    text_color: Annotated[str, typer.Option(help="#RRGGBB.")] = "#FFFFFF",
    stroke_color: Annotated[str, typer.Option(help="#RRGGBB.")] = "#000000",
    stroke_width: Annotated[float, typer.Option(help="Pixels.")] = 4.0,
    position: Annotated[str, typer.Option(help="top, center, bottom or custom.")] = "bottom",
    position_pct: Annotated[float, typer.Option(help="With --position custom.")] = 75.0,
    word_highlight: Annotated[bool, typer.Option(help="Karaoke-style words.")] = False,
    highlight_color: Annotated[str, typer.Option(help="#RRGGBB.")] = "#FFD700",
    box: Annotated[bool, typer.Option("--box/--no-box", help="Box behind text.")] = False,
    box_color: Annotated[str, typer.Option(help="#RRGGBB.")] = "#000000",
    box_opacity: Annotated[float, typer.Option(help="0 to 1.")] = 0.5,
    max_lines: Annotated[int, typer.Option(help="Lines per subtitle cue.")] = 2,
    seed: Annotated[int | None, typer.Option(help="Reproducible random choices.")] = None,
    preset: Annotated[str, typer.Option(help="x264 preset.")] = "veryfast",
    crf: Annotated[int, typer.Option(help="x264 quality, lower is better.")] = 23,
    encoder: Annotated[
        str, typer.Option(help="auto, libx264, h264_nvenc, h264_qsv or h264_vaapi.")
    ] = "auto",
    fps: Annotated[int, typer.Option(help="Frames per second.")] = 30,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print manifest.json only.")] = False,
) -> None:
    """Render a video from TOPIC or from --script / --script-file."""
    # Started first: validation below already imports Prefect, which must see its URL.
    server = _TemporaryPrefectAPI()
    # Our stages' warnings (provider retries, skipped files) end up in the manifest and the
    # closing lines; on the console they would break the one-line error promise.
    for name in ("blocks", "tasks", "flows", "api"):
        logging.getLogger(name).setLevel(logging.ERROR)
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
    finally:
        server.stop()


def _validated_spec(script: str | None, script_file: Path | None, **fields: object) -> object:
    from pydantic import ValidationError

    from flows.spec import VideoSpec, first_error

    if script is not None and script_file is not None:
        raise _fail("give --script or --script-file, not both") from None
    if script_file is not None:
        try:
            script = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read script file {script_file}: {exc.strerror or exc}") from None
    try:
        return VideoSpec(script=script, **fields)
    except ValidationError as exc:
        raise _fail(first_error(exc)) from None


def _run(spec: object, out: Path | None, as_json: bool, server: _TemporaryPrefectAPI) -> None:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from blocks.errors import BadInput
    from flows.progress import listening
    from flows.video import STAGES, preflight, video_flow

    try:
        preflight(spec)
    except BadInput as exc:
        raise _fail(str(exc)) from None
    try:
        server.wait()
    except RuntimeError as exc:
        raise _fail(str(exc), code=1) from None

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=not console.is_terminal,
    ) as bar:
        rows = {name: bar.add_task(f"{name:<10} waiting", total=1, start=False) for name in STAGES}

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
            with listening(on_stage):
                result = video_flow(spec, out_dir=str(out) if out else None)
        except BadInput as exc:
            raise _fail(str(exc)) from None
        except Exception as exc:  # the stage and reason, never a traceback
            raise _fail(
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__, code=1
            ) from None

    manifest = json.loads(Path(result.video).with_name("manifest.json").read_text())
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
        raise _fail(f"cannot list {provider} voices; use --provider edge or offline")
    from blocks.calls import ProviderError
    from blocks.tts import EdgeTTS

    try:
        listed = EdgeTTS().voices()
    except ProviderError as exc:
        raise _fail(f"edge voices unavailable: {exc}", code=1) from None
    for voice_id, locale in listed:
        typer.echo(f"{voice_id}\t{locale}")


providers_app = typer.Typer(no_args_is_help=True, help="Configured network providers.")
app.add_typer(providers_app, name="providers")


@providers_app.command("check")
def providers_check() -> None:
    """Call each configured provider once (LLMs, stock footage) and show which answered."""
    from rich.console import Console
    from rich.table import Table

    from blocks.calls import classify
    from blocks.errors import BadInput
    from blocks.llm import SYSTEM, block_from_settings
    from blocks.settings import get_settings
    from blocks.stock import source_from_settings

    settings = get_settings()
    checks = [(name, "llm") for name in settings.llm.providers] + [
        (name, "materials") for name in settings.materials.providers if name != "local"
    ]
    if not checks:
        raise _fail("no providers configured (set MPT_LLM__PROVIDERS or MPT_MATERIALS__PROVIDERS)")
    table = Table("provider", "kind", "answered", "seconds", "detail")
    answered = 0
    for name, kind in checks:
        start = time.perf_counter()
        block = None
        try:
            if kind == "llm":
                block = block_from_settings(name)
                reply = block.complete(SYSTEM, 'Reply with {"ok": true}')
                detail = f"{len(reply)} characters"
            else:
                block = source_from_settings(name)
                if block is None:
                    raise BadInput(f"no key: set MPT_{name.upper()}__API_KEY")
                detail = f"{len(block.search('nature', 'portrait', (1080, 1920)))} clips"
            ok = True
        except BadInput as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
            ok, detail = False, str(classify(exc))
            secret = getattr(block, "api_key", None)
            if secret is not None and secret.get_secret_value():
                detail = detail.replace(secret.get_secret_value(), "***")
        answered += ok
        table.add_row(
            name, kind, "yes" if ok else "no", f"{time.perf_counter() - start:.2f}", detail
        )
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
        raise _fail(f"catalog unavailable at {database_url()}: {first_error(exc)}", 1) from None


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer, creator or admin.")] = "creator",
    owner: Annotated[
        str | None, typer.Option(help="Whose tasks the key sees (default: its own id).")
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    if role not in ("viewer", "creator", "admin"):
        raise _fail(f"unknown role '{role}'; valid roles: viewer, creator, admin")
    if owner is not None and not (1 <= len(owner) <= 100 and owner.isprintable()):
        raise _fail("owner must be 1 to 100 printable characters")
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
        raise _fail(f"no active key with id {key_id}")
    typer.echo(f"key {key_id} revoked")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
