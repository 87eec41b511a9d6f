"""The MCP server with the SDK's own client, over streamable HTTP and over stdio, against the
real facade (PostgreSQL, Redis, the session's Prefect server) and a real worker; and with an
MCP client we did not write, the MCP Inspector's CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import jsonschema
import pytest

from .conftest import media
from .service import (
    REPO,
    SPEC,
    cancel_open_runs,
    facade_server,
    free_port,
    key,
    start_worker,
    stop_process_group,
    wait_for,
)

MPT = str(Path(sys.executable).with_name("mpt"))
INSPECTOR = REPO / ".test-deps" / "node_modules" / ".bin" / "mcp-inspector"
SHORT = SPEC | {"script": "An agent asked for this. It is short."}


@pytest.fixture(scope="module")
def facade(deployed):
    cancel_open_runs()
    worker = start_worker("cpu")
    try:
        with facade_server(deployed) as url:
            yield url
    finally:
        stop_process_group(worker)


@pytest.fixture(scope="module")
def mcp_url(facade):
    """The MCP server's streamable HTTP app, served on a port of its own."""
    import uvicorn

    from api.mcp.server import build

    os.environ["MPT_API_URL"] = facade
    port = free_port()
    app = build().streamable_http_app(streamable_http_path="/mcp")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout_s=30, interval_s=0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(timeout=10)


def http_client(url: str, headers: dict[str, str] | None):  # noqa: ANN201
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    hc = httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30.0, read=300.0))
    return hc, Client(streamable_http_client(url, http_client=hc))


def stdio_client(facade: str, secret: str | None):  # noqa: ANN201
    from mcp import Client, StdioServerParameters

    env = {"MPT_API_URL": facade, "PATH": os.environ["PATH"]}
    if secret:
        env["MPT_API_KEY"] = secret
    return Client(StdioServerParameters(command=MPT, args=["mcp"], env=env, cwd=str(REPO)))


async def check_session(client, secret_headers: dict, facade: str, script: str) -> None:  # noqa: ANN001
    """What both transports must do: valid schemas, a video made while progress arrives in
    order, the REST API agreeing, the manifest resource and the signed video link."""
    tools = await client.list_tools()
    names = {t.name for t in tools.tools}
    assert names == {
        "create_video",
        "create_audio",
        "create_subtitles",
        "get_run",
        "list_runs",
        "cancel_run",
        "create_batch",
        "get_batch",
        "review_run",
        "get_storyboard",
        "set_storyboard",
        "list_voices",
    }
    for tool in tools.tools:
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.description, tool.name
    props = next(t for t in tools.tools if t.name == "create_video").input_schema["properties"]
    assert props["crf"]["minimum"] == 0 and props["crf"]["maximum"] == 51
    assert props["crf"]["title"] == "Quality (CRF)" and props["script"]["title"] == "Script"

    seen: list[tuple[float, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, message))

    # A script of its own: a cached run would finish before it could report its stages.
    result = await client.call_tool(
        "create_video", SHORT | {"script": script, "wait": True}, progress_callback=progress
    )
    assert not result.is_error, result.content
    run = result.structured_content
    assert run["state"] == "completed", run
    values = [v for v, _ in seen]
    assert values == sorted(values) and values[-1] == 100, seen
    assert any(0 < v < 100 for v in values), seen  # a stage on the way, not only the end
    assert seen[-1][1] == "publish: completed", seen

    rest = httpx.get(f"{facade}/api/v1/tasks/{run['run_id']}", headers=secret_headers).json()
    got = (await client.call_tool("get_run", {"run_id": run["run_id"]})).structured_content
    assert got["state"] == rest["state"] and got["duration_s"] == rest["duration_s"]
    assert set(got["files"]) == set(rest["signed_urls"])

    manifest = await client.read_resource(f"mpt://runs/{run['run_id']}/manifest")
    assert json.loads(manifest.contents[0].text)["flow_run_id"] == run["run_id"]

    links = [c for c in result.content if c.type == "resource_link"]
    video = next(str(c.uri) for c in links if c.name == "video")
    data = httpx.get(video, timeout=30)  # no key: the link is signed
    assert data.status_code == 200
    path = Path(os.environ["MPT_OUTPUT_ROOT"]) / "mcp-download.mp4"
    path.write_bytes(data.content)
    assert media(path)["video_codec"] == "h264" and media(path)["duration"] > 1


def test_streamable_http(mcp_url, facade):
    headers = key("creator", "agent")

    async def go() -> None:
        hc, client = http_client(mcp_url, headers)
        async with hc, client:
            await check_session(client, headers, facade, "Over HTTP this is made. It ends.")

    asyncio.run(go())


def test_stdio(facade):
    headers = key("creator", "desktop-agent")

    async def go() -> None:
        async with stdio_client(facade, headers["X-API-Key"]) as client:
            await check_session(client, headers, facade, "Over stdio this is made. It ends.")

    asyncio.run(go())


def test_bad_input_permissions_and_keys_are_one_line_tool_errors(mcp_url, facade):
    async def call(headers: dict | None, tool: str, args: dict) -> tuple[bool, str]:
        hc, client = http_client(mcp_url, headers)
        async with hc, client:
            result = await client.call_tool(tool, args)
        text = " ".join(c.text for c in result.content if c.type == "text")
        return result.is_error, text

    creator = key("creator")
    cases = [
        (creator, "create_video", SHORT | {"voice": "robot"}, "unknown voice 'robot'"),
        (creator, "create_video", {"script": "x" * 20_001}, "the limit is 20000"),
        (creator, "get_run", {"run_id": "6d1d7e3c-0b1e-4d7e-9a55-1b2c3d4e5f60"}, "no such run"),
        (key("viewer"), "create_video", SHORT, "this needs the creator role; the key is viewer"),
        (None, "list_voices", {}, "no API key: send X-API-Key"),
        ({"X-API-Key": "mpt_bogus"}, "list_voices", {}, "invalid API key"),
    ]
    for headers, tool, args, message in cases:
        is_error, text = asyncio.run(call(headers, tool, args))
        assert is_error and message in text and "\n" not in text, (tool, text)
        assert "Traceback" not in text


def test_a_facade_that_is_down_is_one_line(monkeypatch):
    from mcp import Client

    from api.mcp.server import build

    monkeypatch.setenv("MPT_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MPT_API_KEY", "mpt_any")

    async def go() -> tuple[bool, str]:
        async with Client(build()) as client:
            result = await client.call_tool("list_voices", {})
        return result.is_error, result.content[0].text

    is_error, text = asyncio.run(go())
    assert is_error and "did not answer" in text and "127.0.0.1" in text


def test_twenty_concurrent_get_run_calls_over_one_session(mcp_url, facade):
    headers = key("creator", "busy-agent")
    run = httpx.post(f"{facade}/api/v1/audios", json=SHORT, headers=headers).json()["task_id"]

    async def go() -> list:
        hc, client = http_client(mcp_url, headers)
        async with hc, client:
            return await asyncio.gather(
                *(client.call_tool("get_run", {"run_id": run}) for _ in range(20))
            )

    results = asyncio.run(go())
    assert len(results) == 20 and not any(r.is_error for r in results)
    assert {r.structured_content["run_id"] for r in results} == {run}


def test_the_mcp_inspector_lists_tools_and_calls_list_voices(mcp_url):
    if not INSPECTOR.exists():
        pytest.fail("the MCP Inspector is missing: run deployments/install-test-deps.sh")
    header = f"X-API-Key: {key('viewer')['X-API-Key']}"
    base = [str(INSPECTOR), "--cli", mcp_url, "--transport", "http", "--header", header]
    listed = subprocess.run(
        [*base, "--method", "tools/list"], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert "create_video" in {t["name"] for t in json.loads(listed.stdout)["tools"]}
    voices = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "list_voices"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert voices.returncode == 0, voices.stderr
    answer = json.loads(voices.stdout)
    ids = {v["id"] for v in answer["structuredContent"]["voices"]}
    assert "piper:en_US-joe-medium" in ids


def test_tool_parameters_are_the_live_spec():
    """The create tools take the VideoSpec's own fields (types, bounds, titles, defaults) from
    the model itself, in form order: no snapshot to keep in step."""
    from mcp import Client

    from api.mcp.server import build
    from spec import VideoSpec
    from spec.form import ordered_fields

    async def go() -> dict:
        async with Client(build()) as client:
            tools = (await client.list_tools()).tools
        return next(t for t in tools if t.name == "create_video").input_schema

    schema = asyncio.run(go())
    spec = VideoSpec.model_json_schema()
    assert [p for p in schema["properties"] if p != "wait"] == ordered_fields(VideoSpec)
    for name, prop in spec["properties"].items():
        mine = schema["properties"][name]
        for word in ("title", "description", "minimum", "maximum", "maxLength", "pattern"):
            assert mine.get(word) == prop.get(word), (name, word)
        assert mine.get("default") == prop.get("default", mine.get("default")), name
