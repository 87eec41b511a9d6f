"""Providers saved as Prefect blocks on the session's server, named `block:NAME` in settings.

Each block is saved through the Prefect API and points at a local fake of its provider.
"""

from __future__ import annotations

import json

import pytest

from blocks.errors import BadInput
from blocks.llm import OpenAICompatibleLLM, configured_llm, llm_fingerprint
from blocks.stock import PexelsSource
from blocks.tts import AzureSpeechTTS, is_network_voice

from .fakes import (
    SCRIPT_JSON,
    TERMS_JSON,
    Reply,
    openai_chat,
    openai_error,
    pexels_search,
    pexels_video,
    storyboard_json,
)
from .test_tts import wav_bytes

KEY = "sk-settings-SECRET-111"
GW_KEY = "gw-block-SECRET-222"
VOICE_KEY = "speech-block-SECRET-333"
PEXELS_KEY = "pexels-block-SECRET-444"
SECRETS = (KEY, GW_KEY, VOICE_KEY, PEXELS_KEY)


def _api_url() -> str:
    from .service import prefect_api_url

    return prefect_api_url()


def save_gateway(fake, model: str = "gw-model") -> None:
    OpenAICompatibleLLM(
        provider="groq", api_key=GW_KEY, base_url=f"{fake.url}/gw/v1", model=model
    ).save("my-gw", overwrite=True)


def save_voice(fake) -> None:
    AzureSpeechTTS(api_key=VOICE_KEY, base_url=fake.url).save("my-azure", overwrite=True)


def save_pexels(fake) -> None:
    PexelsSource(api_key=PEXELS_KEY, base_url=fake.url).save("my-pexels", overwrite=True)


def route_gateway(fake) -> None:
    """The saved gateway answers each prompt; the built-in openai rejects its key."""
    social = json.dumps({"title": "Coffee", "description": "A cup.", "hashtags": ["#coffee"]})

    def answer(request) -> Reply:
        prompt = request.json()["messages"][1]["content"]
        if "scenes" in prompt:  # the storyboard: queries per scene
            return Reply(body=openai_chat(storyboard_json(prompt)))
        if "search queries" in prompt:
            return Reply(body=openai_chat(TERMS_JSON))
        if "hashtags" in prompt:
            return Reply(body=openai_chat(social))
        return Reply(body=openai_chat(SCRIPT_JSON))

    fake.route("POST", "/gw/v1/chat/completions", answer)
    fake.route(
        "POST",
        "/v1/chat/completions",
        openai_error(401, f"Incorrect API key provided: {KEY}", "invalid_api_key"),
    )


def llm_env(fake, providers: str = "openai,block:my-gw") -> dict[str, str]:
    return {
        "MPT_LLM__PROVIDERS": providers,
        "MPT_OPENAI__API_KEY": KEY,
        "MPT_OPENAI__BASE_URL": f"{fake.url}/v1",
        "MPT_RETRY_BASE_DELAY_S": "0",
    }


def test_setup_registers_every_provider_block_type_with_keys_as_secrets(monkeypatch):
    import asyncio

    from prefect.client.orchestration import get_client

    from deployments import setup

    types = setup.block_types()

    async def forget() -> None:  # as on a new server: none of our types known yet
        async with get_client() as client:
            for block in types:
                try:
                    known = await client.read_block_type_by_slug(block.get_block_type_slug())
                except Exception:  # noqa: BLE001 - not registered: nothing to forget
                    continue
                await client.delete_block_type(known.id)

    async def secret_fields() -> dict[str, list[str]]:
        async with get_client() as client:
            found = {}
            for block in types:
                slug = block.get_block_type_slug()
                known = await client.read_block_type_by_slug(slug)
                schema = await client.get_most_recent_block_schema_for_block_type(known.id)
                found[slug] = schema.fields["secret_fields"]
            return found

    asyncio.run(forget())
    monkeypatch.setenv("PREFECT_API_URL", _api_url())
    monkeypatch.setattr(setup, "create_pools", lambda: asyncio.sleep(0))  # not what is tested
    monkeypatch.setattr(setup, "deploy", lambda: None)
    setup.main()
    secrets = asyncio.run(secret_fields())  # a type that is not registered fails here
    assert len(secrets) == 10
    for block in types:
        keyed = "api_key" in block.model_fields
        assert secrets[block.get_block_type_slug()] == (["api_key"] if keyed else []), block


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    from .conftest import make_video

    path = make_video(tmp_path_factory.mktemp("blocks") / "c.mp4", size="540x540", seconds=3)
    return path.read_bytes()


def test_a_video_from_saved_llm_voice_and_stock_blocks(settings_env, fake, clip_bytes, tmp_path):
    """openai rejects its key; the saved gateway writes the script, a saved Azure voice
    speaks it and a saved Pexels block finds the footage: the manifest names each block."""
    from flows.video import video_flow
    from spec import VideoSpec

    route_gateway(fake)
    fake.route(
        "POST",
        "/cognitiveservices/v1",
        Reply(body=wav_bytes(0.8), headers={"content-type": "audio/wav"}),
    )
    fake.route(
        "GET",
        "/videos/search",
        Reply(body=pexels_search([pexels_video(i, f"{fake.url}/files/{i}.mp4") for i in (1, 2)])),
    )
    fake.route("GET", "/files/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    save_gateway(fake)
    save_voice(fake)
    save_pexels(fake)
    settings_env(
        **llm_env(fake),
        MPT_MATERIALS__PROVIDERS="block:my-pexels,local",
        MPT_WORK_DIR=str(tmp_path / "work"),
    )
    spec = VideoSpec(
        topic="why coffee wakes you up",
        voice="block:my-azure:en-US-JennyNeural",
        resolution="540p",
        aspect="1:1",
        fps=15,
        preset="ultrafast",
    )
    out = tmp_path / "out"
    video_flow(spec, out_dir=str(out))
    text = (out / "manifest.json").read_text()
    manifest = json.loads(text)
    assert manifest["script_source"] == "block:my-gw"
    assert "Caffeine blocks the signals" in manifest["script"]
    assert manifest["terms"] == ["coffee beans", "morning coffee", "coffee farm"]
    assert manifest["voice"] == "block:my-azure:en-US-JennyNeural"
    assert {m["source"] for m in manifest["materials"]} == {"block:my-pexels"}
    assert (out / "video.mp4").stat().st_size > 0
    gateway = fake.hits("/gw/v1/chat/completions")
    assert gateway[0].headers["authorization"] == f"Bearer {GW_KEY}"
    assert gateway[0].json()["model"] == "gw-model"
    speech = fake.hits("/cognitiveservices/v1")[0]
    assert speech.headers["ocp-apim-subscription-key"] == VOICE_KEY
    assert "<voice name='en-US-JennyNeural'>" in speech.body.decode()
    assert fake.hits("/videos/search")[0].headers["authorization"] == PEXELS_KEY
    assert not any(secret in text for secret in SECRETS)


def test_a_changed_block_changes_the_llm_cache_key(settings_env, fake):
    save_gateway(fake)
    settings_env(**llm_env(fake))
    before = llm_fingerprint()
    assert before[0] == "openai:gpt-4o-mini"  # a built-in provider: as it always was
    assert before[1].startswith("block:my-gw:groq:gw-model:")
    save_gateway(fake, model="gw-bigger-model")
    after = llm_fingerprint()
    assert after[1].startswith("block:my-gw:groq:gw-bigger-model:") and after != before
    assert not any(secret in "".join(before + after) for secret in SECRETS)


def test_an_edited_voice_or_stock_block_changes_its_stage_cache_key(fake):
    from blocks.stock import stock_fingerprint
    from blocks.tts import voice_fingerprint

    save_voice(fake)
    save_pexels(fake)
    voice = voice_fingerprint("block:my-azure:en-GB-SoniaNeural")
    stock = stock_fingerprint(["block:my-pexels", "local"])
    assert voice.startswith("block:my-azure:") and voice_fingerprint("piper:x") == ""
    assert len(stock) == 1 and stock[0].startswith("block:my-pexels:")
    AzureSpeechTTS(api_key=VOICE_KEY, base_url=f"{fake.url}/other").save("my-azure", overwrite=True)
    PexelsSource(api_key=PEXELS_KEY, base_url=f"{fake.url}/x").save("my-pexels", overwrite=True)
    assert voice_fingerprint("block:my-azure:en-GB-SoniaNeural") != voice
    assert stock_fingerprint(["block:my-pexels"]) != stock
    assert stock_fingerprint(["block:nobody"]) == ["block:nobody:missing"]
    assert not any(secret in voice + "".join(stock) for secret in SECRETS)


def test_a_saved_voice_speaks_with_the_voice_it_is_given(settings_env, fake, tmp_path):
    from spec import VideoSpec
    from tasks.narration import synthesize
    from tasks.script import make_script

    fake.route(
        "POST",
        "/cognitiveservices/v1",
        Reply(body=wav_bytes(1.0), headers={"content-type": "audio/wav"}),
    )
    save_voice(fake)
    settings_env(MPT_RETRY_BASE_DELAY_S="0")
    voice = "block:mpt-azure-speech-tts/my-azure:en-GB-SoniaNeural"  # the explicit form
    from flows.preflight import preflight

    assert preflight(VideoSpec(script="hi", voice=voice)).voice == voice
    assert is_network_voice(voice) and is_network_voice("block:my-azure:en-GB-SoniaNeural")
    assert not is_network_voice("block:my-azure") and not is_network_voice("block::x")
    n = synthesize(make_script("", "Coffee grows near the equator."), voice, 1.0, 0.3, tmp_path)
    assert n.voice == voice and not n.warnings
    request = fake.hits("/cognitiveservices/v1")[0]
    assert "<voice name='en-GB-SoniaNeural'>" in request.body.decode()
    assert request.headers["ocp-apim-subscription-key"] == VOICE_KEY


def test_providers_check_names_saved_blocks(settings_env, fake):
    from blocks.checks import check_providers

    route_gateway(fake)
    fake.route(
        "GET",
        "/videos/search",
        Reply(body=pexels_search([pexels_video(1, f"{fake.url}/files/1.mp4")])),
    )
    save_gateway(fake)
    save_pexels(fake)
    settings_env(
        **llm_env(fake),
        MPT_MATERIALS__PROVIDERS="block:mpt-pexels-videos/my-pexels,block:missing,local",
    )
    rows = {(c.kind, c.provider): c for c in check_providers()}
    assert rows["llm", "block:my-gw"].answered
    assert not rows["llm", "openai"].answered and "401" in rows["llm", "openai"].detail
    assert rows["materials", "block:mpt-pexels-videos/my-pexels"].answered
    assert rows["materials", "block:mpt-pexels-videos/my-pexels"].detail == "1 clips"
    missing = rows["materials", "block:missing"]
    assert not missing.answered and "no stock footage block named 'missing'" in missing.detail
    assert not any(secret in c.detail for c in rows.values() for secret in SECRETS)


def test_a_missing_stock_block_is_a_warning_like_a_rejected_key(settings_env, fake, tmp_path):
    from spec.options import Concat
    from tasks.storyboard import pick_materials

    settings_env(MPT_WORK_DIR=str(tmp_path / "work"))
    m = pick_materials(
        ["coffee"], 3.0, (540, 540), None, 3.0, Concat.sequential, 1, 1,
        providers=["block:nowhere", "local"],
    )  # fmt: skip
    assert [c.source for c in m.clips] == ["procedural"]
    assert any("no stock footage block named 'nowhere'" in w for w in m.warnings)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_unknown_and_wrong_kind_blocks_are_one_clear_line(settings_env, fake):
    from blocks.tts import tts_for

    save_gateway(fake)
    save_pexels(fake)
    settings_env(MPT_LLM__PROVIDERS="openai,block:my-gw-typo")
    with pytest.raises(BadInput) as unknown:
        configured_llm()
    message = _one_line(unknown)
    assert message.startswith("no LLM block named 'my-gw-typo' (block:my-gw-typo); saved LLM")
    assert "block:my-gw" in message.split("saved LLM blocks:")[1]  # what there is instead
    assert "block:my-pexels" not in message

    settings_env(MPT_LLM__PROVIDERS="block:my-pexels")
    with pytest.raises(BadInput) as wrong:
        configured_llm()
    assert _one_line(wrong).startswith("'block:my-pexels' has block type MPT Pexels videos;")
    assert "MPT OpenAI-compatible LLM" in str(wrong.value)

    with pytest.raises(BadInput, match="'block:my-gw' has block type MPT OpenAI-compatible LLM"):
        tts_for("block", "my-gw:alloy")
    with pytest.raises(BadInput, match="mpt-pexels-videos is none of the LLM block types"):
        settings_env(MPT_LLM__PROVIDERS="block:mpt-pexels-videos/my-pexels")
        configured_llm()


def test_no_prefect_server_is_one_line_naming_prefect_api_url(settings_env):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings_env(MPT_LLM__PROVIDERS="block:my-gw")
    nothing_listens = {PREFECT_API_URL: "http://127.0.0.1:9/api"}
    with temporary_settings(nothing_listens), pytest.raises(BadInput) as down:
        configured_llm()
    assert _one_line(down).startswith(
        "block:my-gw needs the Prefect server it is saved on (PREFECT_API_URL: "
        "http://127.0.0.1:9/api;"
    )


def test_cli_reports_an_unknown_block_in_one_line(fake, tmp_path):
    import os
    import subprocess

    from .test_cli import MPT, REPO

    save_gateway(fake)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_LEVEL"}
    env |= llm_env(fake, "block:nope") | {"PREFECT_API_URL": _api_url()}
    proc = subprocess.run(
        [*MPT, "make", "coffee", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: no LLM block named 'nope' (block:nope); saved LLM blocks:")
    assert "block:my-gw" in lines[0]
