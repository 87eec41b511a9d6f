"""The MCP server: agents make, watch, review and fetch videos.

Built on the official `mcp` SDK (2.x, `MCPServer`) and a client of the REST facade over
HTTP, like the web UI: roles, limits and the catalog apply unchanged, and no pipeline code is
imported. Two transports: stdio (`mpt mcp`, for desktop agents; the key from MPT_API_KEY)
and streamable HTTP at /mcp (`python -m api.mcp_server --http`, which `make stack` runs on
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
import json
import logging
import os
import sys
import weakref
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel, Field, create_model

SPEC_SCHEMA = Path(__file__).with_name("videospec.schema.json")  # VideoSpec's, kept in sync
DEFAULT_API_URL = "http://127.0.0.1:8080"
POLL_S = 1.0
WAIT_LIMIT_S = float(os.environ.get("MPT_MCP_WAIT_S", "1800"))
ENDED = {"completed", "failed", "cancelled", "rejected", "expired", "awaiting_review"}
MIME = {
    "video": "video/mp4",
    "audio": "audio/wav",
    "srt": "application/x-subrip",
    "ass": "text/x-ssa",
    "manifest": "application/json",
    "script": "text/plain",
}


# --- what the tools answer ------------------------------------------------------------


class TaskResult(BaseModel):
    """A task (a run of the service): its state and, when done, its files as signed URLs."""

    task_id: str
    kind: str = Field(description="video, audio or subtitles")
    state: str = Field(
        description="queued, running, awaiting_review, completed, failed, cancelled, "
        "rejected or expired"
    )
    progress: float = Field(description="0 to 100")
    stage: str | None = Field(description="The stage running now, or the last one.")
    error: str | None
    duration_s: float | None = Field(description="The video's length, once made.")
    files: dict[str, str] = Field(
        description="Signed URLs of the files by name (video, srt, manifest, ...): they need "
        "no key and expire after an hour."
    )
    review_note: str | None = None


class TaskList(BaseModel):
    items: list[TaskResult]
    total: int


class BatchRow(BaseModel):
    row: int
    task_id: str | None
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
    return os.environ.get("MPT_API_URL", DEFAULT_API_URL).rstrip("/")


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


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _client() -> httpx.AsyncClient:
    """One pooled client per event loop: a new client per call cost 24 ms of CPU (its TLS
    context is built afresh), which capped the server at 44 calls a second."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_connections=50, max_keepalive_connections=50)
        )
    return client


async def call(ctx: Context, method: str, path: str, **kwargs: Any) -> Any:
    """One request to the facade as the caller; its JSON, or a tool error in one line."""
    url = f"{api_url()}/api/v1{path}"
    try:
        response = await _client().request(
            method, url, headers={"X-API-Key": key_of(ctx)}, **kwargs
        )
    except httpx.HTTPError as exc:
        raise ToolError(
            f"the service at {api_url()} did not answer ({type(exc).__name__})"
        ) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.reason_phrase
        raise ToolError(f"{detail}")
    return response.json() if response.content else None


def absolute(url: str) -> str:
    return f"{api_url()}{url}" if url.startswith("/") else url


def task_result(task: dict[str, Any]) -> TaskResult:
    return TaskResult(
        task_id=str(task["task_id"]),
        kind=task["kind"],
        state=task["state"],
        progress=task["progress"],
        stage=task.get("stage"),
        error=task.get("error"),
        duration_s=task.get("duration_s"),
        files={k: absolute(v) for k, v in (task.get("signed_urls") or {}).items()},
        review_note=task.get("review_note"),
    )


def with_links(result: TaskResult) -> CallToolResult:
    """The structured result, and each file as a resource link an agent can pass on."""
    summary = f"task {result.task_id}: {result.state}"
    if result.error:
        summary += f" ({result.error})"
    content: list[Any] = [TextContent(type="text", text=summary)]
    for name, url in result.files.items():
        kind = name.split("_")[0]
        content.append(
            ResourceLink(
                name=name, uri=url, mime_type=MIME.get(kind), description=f"the task's {name}"
            )
        )
    return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))


# --- the VideoSpec fields as typed tool parameters --------------------------------------


def _type_of(schema: dict[str, Any], prop: dict[str, Any], models: dict[str, Any]) -> Any:
    """A Python type (with its bounds) for one JSON-schema property of VideoSpec."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        target = schema["$defs"][name]
        if "enum" in target:
            return Literal[tuple(target["enum"])]
        if name not in models:
            models[name] = _model(schema, name, target, models)
        return models[name]
    if "anyOf" in prop:
        real = next(p for p in prop["anyOf"] if p.get("type") != "null")
        return _type_of(schema, real, models) | None
    bounds = {
        "ge": prop.get("minimum"),
        "le": prop.get("maximum"),
        "max_length": prop.get("maxLength"),
        "min_length": prop.get("minLength"),
        "pattern": prop.get("pattern"),
    }
    base = {"integer": int, "number": float, "boolean": bool}.get(prop.get("type"), str)
    bounds = {k: v for k, v in bounds.items() if v is not None}
    return Annotated[base, Field(**bounds)] if bounds else base


def _field(schema: dict[str, Any], prop: dict[str, Any], models: dict[str, Any]) -> Any:
    return Field(
        default=prop.get("default"),
        title=prop.get("title"),
        description=prop.get("description"),
    ), _type_of(schema, prop, models)


def _model(schema: dict[str, Any], name: str, target: dict[str, Any], models: dict) -> Any:
    fields = {}
    for field, prop in target["properties"].items():
        info, kind = _field(schema, prop, models)
        fields[field] = (kind, info)
    return create_model(name, **fields)


def spec_parameters() -> list[inspect.Parameter]:
    """VideoSpec's fields as keyword parameters: names, types, bounds, titles, defaults."""
    schema = json.loads(SPEC_SCHEMA.read_text())
    models: dict[str, Any] = {}
    params = []
    for name, prop in schema["properties"].items():
        info, kind = _field(schema, prop, models)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=info.default,
                annotation=Annotated[kind, info],
            )
        )
    return params


def _spec_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The request's spec: what the agent gave (a field left at no value is left out, so the
    service's own default applies: subtitles' style, a derived seed)."""
    out = {}
    for name, value in fields.items():
        if value is None and name in _UNSET_BY_DEFAULT:
            continue
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", exclude_none=True)
        out[name] = value
    return out


_UNSET_BY_DEFAULT = {
    name
    for name, prop in json.loads(SPEC_SCHEMA.read_text())["properties"].items()
    if prop.get("default") is None
}


def spec_tool(kind: str, route: str, description: str) -> Any:
    """A create tool for one kind of task, whose parameters are VideoSpec's fields."""

    async def tool(ctx: Context, wait: bool = False, **fields: Any) -> CallToolResult:
        created = await call(ctx, "POST", f"/{route}", json=_spec_of(fields))
        task_id = created["task_id"]
        task = await call(ctx, "GET", f"/tasks/{task_id}")
        if wait:
            task = await follow(ctx, task_id, task)
        return with_links(task_result(task))

    params = spec_parameters()
    params.insert(0, inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    params.append(
        inspect.Parameter(
            "wait",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                Field(
                    description="Wait until the task ends, sending progress notifications "
                    "(stage and percent) on the way; else return at once with the task id."
                ),
            ],
        )
    )
    tool.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=Annotated[CallToolResult, TaskResult]
    )
    tool.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": Annotated[CallToolResult, TaskResult]
    }
    tool.__name__ = f"create_{kind}"
    tool.__doc__ = description
    return tool


async def follow(ctx: Context, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
    """Poll the task once a second until it ends, reporting each change of stage or
    progress as a notification, in order."""
    last: tuple[Any, Any] | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while True:
        # The state too: a task may end at the stage and progress last reported.
        now = (task.get("stage"), task["progress"], task["state"])
        if now != last:
            stage = task.get("stage") or task["state"]
            await ctx.report_progress(task["progress"], 100, f"{stage}: {task['state']}")
            last = now
        if task["state"] in ENDED or loop.time() > deadline:
            return task
        await asyncio.sleep(POLL_S)
        task = await call(ctx, "GET", f"/tasks/{task_id}")


# --- the server -------------------------------------------------------------------------


def build() -> MCPServer:
    mcp = MCPServer(
        "moneyprinterturbo",
        title="MoneyPrinterTurbo++",
        instructions=(
            "Make short videos from a topic or a script. create_video starts one (wait=true "
            "follows it to the end with progress); get_task reads it; its files come back as "
            "signed URLs that need no key. Use list_voices for `voice` values. Batches make "
            "many videos at once; review_task approves or rejects a video that awaits review."
        ),
        version="1",
        # The SDK logs each request through rich, and httpx each call to the facade: at
        # INFO that was 30 % of the server's CPU under load.
        log_level="WARNING",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    mcp.add_tool(
        spec_tool(
            "video",
            "videos",
            "Make a finished short video (narration, footage, subtitles, music) from a topic "
            "or your own script. Give `script` to narrate your own text (no LLM needed), or "
            "`topic` to have one written. Returns the task; with wait=true, when it has ended.",
        ),
        name="create_video",
    )
    mcp.add_tool(
        spec_tool(
            "audio", "audios", "Only the narration of a script: a WAV file, with the same fields."
        ),
        name="create_audio",
    )
    mcp.add_tool(
        spec_tool(
            "subtitles",
            "subtitles",
            "The narration and its timed subtitles (SRT and ASS), with the same fields.",
        ),
        name="create_subtitles",
    )

    @mcp.tool()
    async def get_task(
        task_id: Annotated[str, Field(description="The id a create tool returned.")],
        ctx: Context,
    ) -> Annotated[CallToolResult, TaskResult]:
        """A task's state, progress, stage and error, and its files once done."""
        return with_links(task_result(await call(ctx, "GET", f"/tasks/{task_id}")))

    @mcp.tool()
    async def list_tasks(
        ctx: Context,
        state: Annotated[
            Literal[
                "queued",
                "running",
                "awaiting_review",
                "completed",
                "failed",
                "cancelled",
                "rejected",
                "expired",
            ]
            | None,
            Field(description="Only tasks in this state."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="How many, newest first.")] = 20,
    ) -> TaskList:
        """Your tasks, newest first."""
        params: dict[str, Any] = {"limit": limit} | ({"state": state} if state else {})
        page = await call(ctx, "GET", "/tasks", params=params)
        return TaskList(items=[task_result(t) for t in page["items"]], total=page["total"])

    @mcp.tool()
    async def cancel_task(
        task_id: Annotated[str, Field(description="A task that is queued or running.")],
        ctx: Context,
    ) -> Annotated[CallToolResult, TaskResult]:
        """Stop a task that has not ended."""
        await call(ctx, "DELETE", f"/tasks/{task_id}")
        return with_links(task_result(await call(ctx, "GET", f"/tasks/{task_id}")))

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
        """Many videos at once: every row is checked first, then each becomes a task."""
        body = {"rows": rows, "defaults": defaults or {}, "skip_invalid": skip_invalid}
        made = await call(ctx, "POST", "/batches", json=body)
        return await _batch(ctx, made["batch_id"])

    @mcp.tool()
    async def get_batch(
        batch_id: Annotated[str, Field(description="The id create_batch returned.")],
        ctx: Context,
    ) -> BatchResult:
        """A batch's rows: counts by state, and each row's task and state."""
        return await _batch(ctx, batch_id)

    async def _batch(ctx: Context, batch_id: str) -> BatchResult:
        b = await call(ctx, "GET", f"/batches/{batch_id}")
        return BatchResult(
            batch_id=str(b["batch_id"]),
            counts=b["counts"],
            rows=[
                BatchRow(
                    row=i["row"],
                    task_id=str(i["task_id"]) if i.get("task_id") else None,
                    state=i["state"],
                    error=i.get("error"),
                )
                for i in b["items"]
            ],
        )

    @mcp.tool()
    async def review_task(
        task_id: Annotated[str, Field(description="A task awaiting review.")],
        approved: Annotated[bool, Field(description="Publish it (true) or drop it (false).")],
        ctx: Context,
        note: Annotated[str, Field(max_length=2000, description="Why, for the record.")] = "",
    ) -> Annotated[CallToolResult, TaskResult]:
        """Approve or reject a video that awaits review before it is published."""
        body = {"approved": approved, "note": note}
        return with_links(
            task_result(await call(ctx, "POST", f"/tasks/{task_id}/review", json=body))
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
        voices = [Voice(**v) for v in await call(ctx, "GET", "/voices")]
        if provider is not None:
            voices = [v for v in voices if v.offline == (provider == "offline")]
        return VoiceList(voices=voices)

    @mcp.resource(
        "mpt://tasks/{task_id}/manifest",
        mime_type="application/json",
        description="A finished task's manifest: script, sentences with times, files, stages.",
    )
    async def manifest(task_id: str, ctx: Context) -> str:
        return await _file(ctx, task_id, "manifest")

    @mcp.resource(
        "mpt://tasks/{task_id}/subtitles.srt",
        mime_type="application/x-subrip",
        description="A finished task's subtitles (SRT).",
    )
    async def subtitles(task_id: str, ctx: Context) -> str:
        return await _file(ctx, task_id, "srt")

    async def _file(ctx: Context, task_id: str, name: str) -> str:
        try:
            task = await call(ctx, "GET", f"/tasks/{task_id}")
        except ToolError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        url = (task.get("signed_urls") or {}).get(name)
        if not url:
            raise ResourceNotFoundError(f"task {task_id} has no {name} (it is {task['state']})")
        response = await _client().get(absolute(url))
        return response.text

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The MCP server of MoneyPrinterTurbo++.")
    parser.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--write-schema", action="store_true", help="refresh api/videospec.schema.json and exit"
    )
    args = parser.parse_args(argv)
    if args.write_schema:  # the only place the pipeline's models are imported
        from flows.spec import VideoSpec

        SPEC_SCHEMA.write_text(json.dumps(VideoSpec.model_json_schema(), indent=2) + "\n")
        return
    server = build()
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port, streamable_http_path="/mcp")
    else:
        server.run()


if __name__ == "__main__":
    sys.exit(main())
