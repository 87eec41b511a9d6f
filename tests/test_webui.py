"""The web UI's pages with Streamlit's AppTest, against the real facade over HTTP.

The facade runs on a port of its own (real PostgreSQL, Redis, the session's Prefect
server); the UI reaches it only through api/client.py, as in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from .service import (
    SPEC,
    cancel_open_runs,
    facade_server,
    key,
    start_worker,
    stop_process_group,
    wait_for,
)

APP = str(Path(__file__).resolve().parent.parent / "webui" / "app.py")


@pytest.fixture(scope="module")
def facade(deployed):
    with facade_server(deployed) as url:
        yield url


def app(facade: str, monkeypatch, locale: str = "en-US") -> AppTest:
    monkeypatch.setenv("MPT_WEBUI__API_URL", facade)
    monkeypatch.delenv("MPT_WEBUI__API_KEY", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.context["locale"] = locale
    return at


def signed_in(facade: str, monkeypatch, role: str = "creator", owner: str | None = None) -> AppTest:
    at = app(facade, monkeypatch)
    at.run()
    at.text_input(key="signin_key").input(key(role, owner)["X-API-Key"]).run()
    at.button(key="signin_button").click().run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def count(catalog_url: str, table: str) -> int:
    with psycopg.connect(catalog_url) as conn:
        return conn.execute(f"SELECT count(*) FROM mpt_catalog.{table}").fetchone()[0]


def test_catalogues_have_every_key():
    locales = Path(APP).parent / "locales"
    keys = {p.stem: set(json.loads(p.read_text())) for p in locales.glob("*.json")}
    assert set(keys) == {"en", "zh"}
    fields = {k for k in keys["zh"] if k.startswith("field.")}
    assert keys["en"] == keys["zh"] - fields  # English labels are the spec's own titles
    # Every field (and nested field) of the spec has a Chinese label, and none is stale.
    from spec import VideoSpec

    paths = {f"field.{name}" for name in VideoSpec.model_fields} | {
        f"field.subtitles.{name}"
        for name in VideoSpec.model_fields["subtitles"].annotation.model_fields
    }
    assert fields == paths, (paths - fields, fields - paths)
    # Every key a page asks for is in the catalogue.
    import re

    used = set()
    for source in (Path(APP).parent).rglob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", source.read_text()))
    used.discard("stage.")  # "stage." + a stage name: each stage is in the catalogue
    assert used <= keys["en"], used - keys["en"]


def test_sign_in_opens_create_and_a_bad_key_is_one_line(facade, monkeypatch):
    at = app(facade, monkeypatch)
    at.run()
    assert [t.value for t in at.title] == ["Sign in"]
    at.button(key="signin_button").click().run()
    assert errors(at) == ["Enter your API key."]
    at.text_input(key="signin_key").input("mpt_wrong").run()
    at.button(key="signin_button").click().run()
    assert errors(at) == ["Error: invalid API key"]
    at = signed_in(facade, monkeypatch)
    assert [t.value for t in at.title] == ["Create a video"]
    assert [t.label for t in at.text_input][:1] == ["Topic"] and at.text_area[0].label == "Script"
    assert at.button(key="generate").label == "Generate"
    assert "api_key" in at.session_state  # in the session, and nowhere in the page
    assert at.session_state["api_key"] not in json.dumps([str(e) for e in at.main])


def test_the_page_speaks_the_browsers_language(facade, monkeypatch):
    at = app(facade, monkeypatch, locale="zh-CN")
    at.run()
    assert [t.value for t in at.title] == ["登录"]
    assert at.text_input(key="signin_key").label == "API 密钥"


def test_a_viewer_sees_no_generate_button(facade, monkeypatch):
    at = signed_in(facade, monkeypatch, role="viewer")
    assert not [b for b in at.button if b.key == "generate"]
    assert any("can only watch" in i.value for i in at.info)


def test_bad_input_is_one_line_and_creates_nothing(facade, monkeypatch, catalog_url):
    at = signed_in(facade, monkeypatch)
    before = count(catalog_url, "videos")
    at.button(key="generate").click().run()
    assert errors(at) == ["Enter a topic or a script."]
    at.text_area(key="f.script").input("word " * 4001).run()  # 20,005 characters
    at.button(key="generate").click().run()
    assert errors(at) == ["The script is 20005 characters; the limit is 20000."]
    at.text_area(key="f.script").input("A fine script.").run()
    at.number_input(key="f.crf").set_value(51).run()
    at.text_input(key="f.seed").input("not a number").run()
    at.button(key="generate").click().run()
    assert len(errors(at)) == 1 and errors(at)[0].startswith("Error: seed: "), errors(at)
    assert count(catalog_url, "videos") == before


def test_campaign_rows_are_refused_before_anything_starts(facade, monkeypatch, catalog_url):
    at = signed_in(facade, monkeypatch)
    at.switch_page("pages/campaigns.py").run()
    before = count(catalog_url, "batches")
    at.session_state["campaign_rows"] = {
        "edited_rows": {0: {"script": "A fine row."}},
        "added_rows": [{"topic": "", "script": "Another row."}],
        "deleted_rows": [],
    }
    at.text_area(key="campaign_defaults").input('{"crf": 99}').run()
    at.button(key="campaign_start").click().run()
    assert errors(at) == [
        "Row 1: crf: Input should be less than or equal to 51",
        "Row 2: crf: Input should be less than or equal to 51",
    ]
    at.text_area(key="campaign_defaults").input("[1, 2]").run()
    at.button(key="campaign_check").click().run()
    assert errors(at) == ["The defaults are not a JSON object: not a JSON object"]
    assert count(catalog_url, "batches") == before


@pytest.fixture(scope="module")
def awaiting(facade):
    """Two videos rendered and suspended for review, made by a real worker."""
    import httpx

    cancel_open_runs()
    worker = start_worker("cpu")
    headers = key("creator", "reviewer")
    try:
        ids = []
        for i in range(2):
            body = SPEC | {"script": f"Review me, video {i}. Thank you.", "review": True}
            r = httpx.post(f"{facade}/api/v1/videos", json=body, headers=headers, timeout=30)
            ids.append(r.json()["task_id"])

        def state(task: str) -> str:
            return httpx.get(f"{facade}/api/v1/tasks/{task}", headers=headers).json()["state"]

        for task in ids:
            wait_for(lambda t=task: state(t) == "awaiting_review", timeout_s=240, interval_s=0.5)
        yield ids, state
    finally:
        stop_process_group(worker)


def test_review_approve_and_reject_from_the_page(facade, monkeypatch, awaiting):
    ids, state = awaiting
    at = signed_in(facade, monkeypatch, owner="reviewer")
    at.switch_page("pages/review.py").run()
    assert len(at.get("video")) == 2  # each waiting video with its player
    at.text_input(key=f"note-{ids[1]}").input("not this one").run()
    at.button(key=f"approve-{ids[0]}").click().run()
    assert any(ids[0] in s.value for s in at.success)
    at.button(key=f"reject-{ids[1]}").click().run()
    assert any(ids[1] in s.value for s in at.success)
    assert state(ids[1]) in ("queued", "running", "rejected")
