"""The MCP server: agents make, watch, review and fetch videos.

Built on the official `mcp` SDK (2.x, `MCPServer`) and the facade's one client
(`api.client`), like the web UI: roles, limits and the catalog apply unchanged, and no
pipeline code is imported. The create tools' parameters are the live VideoSpec's fields (its
types, bounds, titles and defaults), so a field added to the spec is a parameter here with no
edit. Two transports: stdio (`mpt mcp`, for desktop agents; the key from MPT_API_KEY) and
streamable HTTP at /mcp (`python -m api.mcp --http`, which `make stack` runs on
127.0.0.1:8081; the key from each request's X-API-Key or Authorization: Bearer header).

Tools answer with structured output (pydantic models) and, for files, resource links
carrying the facade's signed URLs, so an agent can hand a video on without a key. Bad input
is a tool error with the facade's one-line reason; a facade that does not answer is one line
naming it; no traceback reaches the client.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from api.client import Facade, FacadeError, api_url_from_env
from spec.form import ordered_fields
from spec.runs import RUN_STATES, SETTLED, Kind
from spec.scenes import SceneEdit, Storyboard, StoryboardEdit
from spec.service import BatchOut, RunOut
from spec.video import VideoSpec

POLL_S = 1.0
WAIT_LIMIT_S = float(os.environ.get("MPT_MCP_WAIT_S", "1800"))
MIME = {
    "video": "video/mp4",
    "audio": "audio/wav",
    "srt": "application/x-subrip",
    "ass": "text/x-ssa",
    "manifest": "application/json",
    "script": "text/plain",
}
# The facade client is synchronous (one client for every program); its calls run here, off
# the event loop, many at once.
_calls = ThreadPoolExecutor(32, thread_name_prefix="facade")
T = TypeVar("T")


# --- what the tools answer ------------------------------------------------------------


class RunResult(BaseModel):
    """A run of the service: its state and, when done, its files as signed URLs."""

    run_id: str
    kind: str = Field(description="video, audio or subtitles")
    state: str = Field(description=", ".join(RUN_STATES))
    progress: float = Field(description="0 to 100")
    stage: str | None = Field(description="The stage running now, or the last one.")
    error: str | None
    duration_s: float | None = Field(description="The video's length, once made.")
    files: dict[str, str] = Field(
        description="Signed URLs of the files by name (video, srt, manifest, ...): they need "
        "no key and expire after an hour."
    )
    review_note: str | None = None


class RunList(BaseModel):
    items: list[RunResult]
    total: int


class BatchRow(BaseModel):
    row: int
    run_id: str | None
    state: str
    error: str | None = None


class BatchResult(BaseModel):
    batch_id: str
    counts: dict[str, int] = Field(description="Rows by state.")
    rows: list[BatchRow]


class Voice(BaseModel):
    id: str = Field(description="What to pass as `voice`: ENGINE:NAME.")
    engine: str
    language: str
    offline: bool


class VoiceList(BaseModel):
    voices: list[Voice]


# --- the facade -----------------------------------------------------------------------


def api_url() -> str:
    return api_url_from_env("MPT_API_URL")


def key_of(ctx: Context) -> str:
    """The caller's API key: the HTTP request's header, or MPT_API_KEY over stdio."""
    headers = ctx.headers or {}
    key = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()
    if not key and ctx.headers is None:
        key = os.environ.get("MPT_API_KEY")
    if not key:
        raise ToolError(
            "no API key: send X-API-Key (or Authorization: Bearer) with the request, or set "
            "MPT_API_KEY for the stdio server"
        )
    return key


async def call(ctx: Context, use: Callable[[Facade], T]) -> T:
    """One call of the facade as the caller; its answer, or a tool error in one line."""
    facade = Facade(api_url(), key_of(ctx))
    try:
        return await asyncio.get_running_loop().run_in_executor(_calls, use, facade)
    except FacadeError as exc:
        raise ToolError(str(exc)) from None


def run_result(run: RunOut, facade_url: str) -> RunResult:
    absolute = Facade(facade_url).absolute
    return RunResult(
        run_id=str(run.task_id),
        kind=run.kind,
        state=run.state,
        progress=run.progress,
        stage=run.stage,
        error=run.error,
        duration_s=run.duration_s,
        files={k: absolute(v) for k, v in run.signed_urls.items()},
        review_note=run.review_note,
    )


def with_links(result: RunResult) -> CallToolResult:
    """The structured result, and each file as a resource link an agent can pass on."""
    summary = f"run {result.run_id}: {result.state}"
    if result.error:
        summary += f" ({result.error})"
    content: list[Any] = [TextContent(type="text", text=summary)]
    for name, url in result.files.items():
        kind = name.split("_")[0]
        content.append(
            ResourceLink(
                name=name, uri=url, mime_type=MIME.get(kind), description=f"the run's {name}"
            )
        )
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


# --- the VideoSpec fields as typed tool parameters --------------------------------------


def spec_parameters(model: type[BaseModel] = VideoSpec) -> list[inspect.Parameter]:
    """The model's fields as keyword parameters: each with the field's type, bounds, title,
    description and default, so the tool's input schema is the spec's."""
    params = []
    for name in ordered_fields(model):
        field = model.model_fields[name]
        described = Field(
            title=field.title,
            description=field.description,
            json_schema_extra=field.json_schema_extra,
        )
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=field.get_default(call_default_factory=True),
                annotation=Annotated[field.annotation, *field.metadata, described],
            )
        )
    return params


def spec_tool(kind: Kind, description: str, model: type[BaseModel] = VideoSpec) -> Any:
    """A create tool for one kind of run, whose parameters are the spec's fields."""

    async def tool(ctx: Context, wait: bool = False, **fields: Any) -> CallToolResult:
        spec = to_jsonable_python(fields)  # the spec's defaults for what was not given
        created = await call(ctx, lambda f: f.create(kind, spec))
        run = await call(ctx, lambda f: f.run(created.task_id))
        if wait:
            run = await follow(ctx, run)
        return with_links(run_result(run, api_url()))

    params = spec_parameters(model)
    params.insert(0, inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    params.append(
        inspect.Parameter(
            "wait",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                Field(
                    description="Wait until the run ends, sending progress notifications "
                    "(stage and percent) on the way; else return at once with the run id."
                ),
            ],
        )
    )
    tool.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=Annotated[CallToolResult, RunResult]
    )
    tool.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": Annotated[CallToolResult, RunResult]
    }
    tool.__name__ = f"create_{kind}"
    tool.__doc__ = description
    return tool


async def follow(ctx: Context, run: RunOut) -> RunOut:
    """Poll the run once a second until it settles, reporting each change of stage or
    progress as a notification, in order."""
    last: tuple[Any, Any, Any] | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while True:
        # The state too: a run may end at the stage and progress last reported.
        now = (run.stage, run.progress, run.state)
        if now != last:
            stage = run.stage or run.state
            await ctx.report_progress(run.progress, 100, f"{stage}: {run.state}")
            last = now
        if run.state in SETTLED or loop.time() > deadline:
            return run
        await asyncio.sleep(POLL_S)
        run = await call(ctx, lambda f, i=run.task_id: f.run(i))


# --- the server -------------------------------------------------------------------------

RunIdArg = Annotated[str, Field(description="The run id a create tool returned.")]


def build(model: type[BaseModel] = VideoSpec) -> MCPServer:
    """The server; its create tools take `model`'s fields (the spec, or a subclass of it)."""
    mcp = MCPServer(
        "moneyprinterturbo",
        title="MoneyPrinterTurbo++",
        instructions=(
            "Make short videos from a topic or a script. create_video starts a run (wait=true "
            "follows it to the end with progress); get_run reads it; its files come back as "
            "signed URLs that need no key. Use list_voices for `voice` values. Batches make "
            "many videos at once; review_run approves or rejects a video that awaits review; "
            "with review_storyboard, get_storyboard shows each scene's footage and "
            "set_storyboard changes it before the render."
        ),
        version="1",
        # The SDK logs each request through rich, and httpx each call to the facade: at
        # INFO that was 30 % of the server's CPU under load.
        log_level="WARNING",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    creates: dict[Kind, str] = {
        "video": "Make a finished short video (narration, footage, subtitles, music) from a "
        "topic or your own script. Give `script` to narrate your own text (no LLM needed), or "
        "`topic` to have one written. Returns the run; with wait=true, when it has ended.",
        "audio": "Only the narration of a script: a WAV file, with the same fields.",
        "subtitles": "The narration and its timed subtitles (SRT and ASS), with the same fields.",
    }
    for kind, description in creates.items():
        mcp.add_tool(spec_tool(kind, description, model), name=f"create_{kind}")

    @mcp.tool()
    async def get_run(run_id: RunIdArg, ctx: Context) -> Annotated[CallToolResult, RunResult]:
        """A run's state, progress, stage and error, and its files once done."""
        return with_links(run_result(await call(ctx, lambda f: f.run(run_id)), api_url()))

    @mcp.tool()
    async def list_runs(
        ctx: Context,
        state: Annotated[
            Literal[RUN_STATES] | None,  # type: ignore[valid-type]
            Field(description="Only runs in this state."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many, newest first.")] = 20,
    ) -> RunList:
        """Your runs, newest first."""
        page = await call(ctx, lambda f: f.runs(state=state, limit=limit))
        url = api_url()
        return RunList(items=[run_result(r, url) for r in page.items], total=page.total)

    @mcp.tool()
    async def cancel_run(
        run_id: Annotated[str, Field(description="A run that is queued or running.")],
        ctx: Context,
    ) -> Annotated[CallToolResult, RunResult]:
        """Stop a run that has not ended."""
        await call(ctx, lambda f: f.cancel(run_id))
        return with_links(run_result(await call(ctx, lambda f: f.run(run_id)), api_url()))

    @mcp.tool()
    async def create_batch(
        rows: Annotated[
            list[dict[str, Any]],
            Field(
                min_length=1,
                description="Each row the fields of one video (as create_video takes them; at "
                "least topic or script).",
            ),
        ],
        ctx: Context,
        defaults: Annotated[
            dict[str, Any], Field(description="Fields for every row that does not set them.")
        ]
        | None = None,
        skip_invalid: Annotated[
            bool, Field(description="Make the good rows and report the bad ones.")
        ] = False,
    ) -> BatchResult:
        """Many videos at once: every row is checked first, then each becomes a run."""
        made = await call(
            ctx, lambda f: f.create_batch(rows, None, defaults or {}, skip_invalid=skip_invalid)
        )
        return batch_result(await call(ctx, lambda f: f.batch(made.batch_id)))

    @mcp.tool()
    async def get_batch(
        batch_id: Annotated[str, Field(description="The id create_batch returned.")],
        ctx: Context,
    ) -> BatchResult:
        """A batch's rows: counts by state, and each row's run and state."""
        return batch_result(await call(ctx, lambda f: f.batch(batch_id)))

    @mcp.tool()
    async def review_run(
        run_id: Annotated[str, Field(description="A run awaiting review.")],
        approved: Annotated[bool, Field(description="Publish it (true) or drop it (false).")],
        ctx: Context,
        note: Annotated[str, Field(max_length=2000, description="Why, for the record.")] = "",
    ) -> Annotated[CallToolResult, RunResult]:
        """Approve or reject a video that awaits review before it is published."""
        run = await call(ctx, lambda f: f.review(run_id, approved, note))
        return with_links(run_result(run, api_url()))

    @mcp.tool()
    async def get_storyboard(run_id: RunIdArg, ctx: Context) -> Storyboard:
        """A run's storyboard: each scene's time, words, search terms, the clip it shows (a
        signed still of it) and its other candidates; `editable` while it awaits review."""
        return await call(ctx, lambda f: f.storyboard(run_id))

    @mcp.tool()
    async def set_storyboard(
        run_id: RunIdArg,
        ctx: Context,
        scenes: Annotated[
            list[SceneEdit],
            Field(
                description="Changes, by scene index: `candidate` (a place in its candidates), "
                "`clip` (an uploaded file's path) or `terms` (search again). Empty: render "
                "the storyboard as it is."
            ),
        ] = [],  # noqa: B006 - the SDK reads the default; it is never mutated
    ) -> Annotated[CallToolResult, RunResult]:
        """Change a storyboard awaiting review and let the run render it."""
        edit = StoryboardEdit(scenes=scenes)
        return with_links(
            run_result(await call(ctx, lambda f: f.set_storyboard(run_id, edit)), api_url())
        )

    @mcp.tool()
    async def list_voices(
        ctx: Context,
        provider: Annotated[
            Literal["offline", "network"] | None,
            Field(description="Only offline voices, or only the network engines."),
        ] = None,
    ) -> VoiceList:
        """Voices for `voice`: the offline ones, and the network engines (ENGINE:NAME)."""
        voices = [Voice(**v.model_dump()) for v in await call(ctx, lambda f: f.voices())]
        if provider is not None:
            voices = [v for v in voices if v.offline == (provider == "offline")]
        return VoiceList(voices=voices)

    @mcp.resource(
        "mpt://runs/{run_id}/manifest",
        mime_type="application/json",
        description="A finished run's manifest: script, sentences with times, files, stages.",
    )
    async def manifest(run_id: str, ctx: Context) -> str:
        return await _file(ctx, run_id, "manifest")

    @mcp.resource(
        "mpt://runs/{run_id}/subtitles.srt",
        mime_type="application/x-subrip",
        description="A finished run's subtitles (SRT).",
    )
    async def subtitles(run_id: str, ctx: Context) -> str:
        return await _file(ctx, run_id, "srt")

    async def _file(ctx: Context, run_id: str, name: str) -> str:
        try:
            run = await call(ctx, lambda f: f.run(run_id))
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        url = run.signed_urls.get(name)
        if not url:
            raise ResourceNotFoundError(f"run {run_id} has no {name} (it is {run.state})")
        data = await call(ctx, lambda f: f.fetch(url))
        return data.decode("utf-8")

    @mcp.prompt(description="Turn a topic and an audience into a good create_video call.")
    def video_for(topic: str, audience: str = "a general audience") -> str:
        return (
            f"Write a short-video narration about {topic!r} for {audience}: three short "
            "paragraphs of plain spoken sentences (no headings, lists, emojis or stage "
            "directions), about 80 words in all. Then call create_video with that text as "
            "`script`, `topic` set to a few words naming it, aspect '9:16' for phones (or "
            "'16:9' for a wide screen), music 'random', and wait=true. Use list_voices if "
            "the audience needs another language's voice. When it completes, give the user "
            "the video's signed URL from the result's files."
        )

    return mcp


def batch_result(batch: BatchOut) -> BatchResult:
    return BatchResult(
        batch_id=str(batch.batch_id),
        counts=batch.counts,
        rows=[
            BatchRow(
                row=i.row,
                run_id=str(i.task_id) if i.task_id else None,
                state=i.state,
                error=i.error,
            )
            for i in batch.items
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The MCP server of MoneyPrinterTurbo++.")
    parser.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    server = build()
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port, streamable_http_path="/mcp")
    else:
        server.run()


if __name__ == "__main__":
    sys.exit(main())
