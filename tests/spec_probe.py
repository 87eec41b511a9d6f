"""Run by tests/test_one_definition.py in a process of its own: the video spec gains a field (in
a subclass put in its place before anything else is imported), and each program shows what it
made of it, as JSON on stdout. Nothing but the spec is edited."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from pydantic import Field

import spec
import spec.video
from spec.form import Group, group

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class Extended(spec.video.VideoSpec):
    new_option: int = Field(
        7,
        title="New option",
        description="A field only this test adds.",
        ge=1,
        le=9,
        json_schema_extra=group(Group.footage),
    )


spec.video.VideoSpec = Extended  # type: ignore[misc]
spec.VideoSpec = Extended  # type: ignore[misc]


def cli() -> dict:
    from typer.testing import CliRunner

    import api.cli.main as main

    seen: dict = {}
    main._run = lambda s, *a, **k: seen.update(s.model_dump(mode="json"))  # no render
    runner = CliRunner()
    shown = runner.invoke(main.app, ["make", "--help"], env={"COLUMNS": "200"}).output
    panel = shown[: shown.find("--new-option")].rsplit("╭─ ", 1)[-1].split(" ─", 1)[0]
    made = runner.invoke(main.app, ["make", "--script", "Hi.", "--new-option", "3"])
    refused = runner.invoke(main.app, ["make", "--script", "Hi.", "--new-option", "12"])
    return {
        "listed": "--new-option" in shown,
        "help": "A field only this test adds." in shown,
        "panel": panel.strip(),
        "parsed": seen.get("new_option"),
        "made_exit": made.exit_code,
        "refused_exit": refused.exit_code,
    }


def rest() -> dict:
    from api.rest.app import create_app
    from api.rest.schemas import VideoRequest

    openapi = create_app().openapi()
    body = openapi["paths"]["/api/v1/videos"]["post"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    prop = openapi["components"]["schemas"][ref]["properties"].get("new_option", {})
    try:
        VideoRequest.model_validate({"script": "Hi.", "new_option": 12})
        refused = False
    except ValueError:
        refused = True
    return {"maximum": prop.get("maximum"), "title": prop.get("title"), "refused": refused}


def mcp() -> dict:
    from mcp import Client

    from api.mcp.server import build

    async def go() -> dict:
        async with Client(build()) as client:
            tools = (await client.list_tools()).tools
        return next(t for t in tools if t.name == "create_video").input_schema

    prop = asyncio.run(go())["properties"].get("new_option", {})
    return {"maximum": prop.get("maximum"), "default": prop.get("default")}


def webui() -> dict:
    from streamlit.testing.v1 import AppTest

    def page() -> None:  # the Create page's form, drawn from the schema /config serves
        import streamlit as st

        from spec.video import VideoSpec
        from webui.form import group, group_label, groups

        schema = VideoSpec.model_json_schema()
        for name, fields in groups(schema):
            with st.expander(group_label(name)):
                st.session_state.setdefault("spec", {}).update(group(schema, fields, []))

    at = AppTest.from_function(page, default_timeout=60)
    at.run()
    found = [(e.label, n) for e in at.expander for n in e.number_input if n.key == "f.new_option"]
    expander, box = found[0] if found else (None, None)
    return {
        "label": box.label if box else None,
        "value": box.value if box else None,
        "max": box.max if box else None,
        "group": expander,
        "errors": [str(e.value) for e in at.exception],
    }


def prefect() -> dict:
    from flows.batch import batch_flow
    from flows.video import video_flow
    from spec.campaign import valid_columns

    schema = video_flow.parameters.model_dump()
    spec_ref = schema["properties"]["spec"]["$ref"].rsplit("/", 1)[-1]
    prop = schema["definitions"][spec_ref]["properties"].get("new_option", {})
    positions = [p["position"] for p in schema["definitions"][spec_ref]["properties"].values()]
    return {
        "title": prop.get("title"),
        "position": prop.get("position"),
        "positions_unique": len(set(positions)) == len(positions),
        "column": "new_option" in valid_columns(Extended),
        "batch_flow": bool(batch_flow.parameters),
    }


if __name__ == "__main__":
    os.chdir(REPO)
    out = {"cli": cli(), "rest": rest(), "mcp": mcp(), "webui": webui(), "prefect": prefect()}
    print("PROBE " + json.dumps(out))
