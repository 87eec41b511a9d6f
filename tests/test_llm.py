"""LLM providers through their real SDKs against local fakes of their wire formats."""

import json
import time

import pytest

from blocks.errors import BadInput, StageError
from blocks.llm import LLMChain, configured_llm

from .fakes import (
    SCRIPT_JSON,
    TERMS_JSON,
    Reply,
    gemini_error,
    gemini_reply,
    ollama_reply,
    openai_chat,
    openai_error,
    storyboard_json,
)

KEY = "sk-test-SECRET-0123456789"


def chain(settings_env, fake, providers: str, **extra: str) -> LLMChain:
    env = {
        "MPT_LLM__PROVIDERS": providers,
        "MPT_OPENAI__API_KEY": KEY,
        "MPT_OPENAI__BASE_URL": f"{fake.url}/v1",
        "MPT_OLLAMA__BASE_URL": fake.url,
        "MPT_GEMINI__API_KEY": KEY,
        "MPT_GEMINI__BASE_URL": fake.url,
        "MPT_LLM_ATTEMPTS": "3",
    } | extra
    settings_env(**env)
    llm = configured_llm()
    assert llm is not None
    return llm


def test_openai_writes_a_clean_script(settings_env, fake):
    fake.route(
        "POST",
        "/v1/chat/completions",
        Reply(body=openai_chat(f"Here you go:\n```json\n{SCRIPT_JSON}\n```")),
    )
    llm = chain(settings_env, fake, "openai")
    text = llm.write_script("coffee", "en", 3)
    assert llm.name == "openai"
    assert "Caffeine blocks the signals" in text  # markdown and emoji gone
    assert "*" not in text and "☕" not in text
    req = fake.hits("/v1/chat/completions")[0]
    assert req.headers["authorization"] == f"Bearer {KEY}"
    body = req.json()
    assert body["model"] == "gpt-4o-mini"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert '"coffee"' in body["messages"][1]["content"]


def test_429_honours_retry_after(settings_env, fake):
    fake.route(
        "POST",
        "/v1/chat/completions",
        Reply(
            429,
            {
                "error": {
                    "message": "Rate limit",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            {"retry-after": "1"},
        ),
        Reply(body=openai_chat(TERMS_JSON)),
    )
    llm = chain(settings_env, fake, "openai")
    start = time.perf_counter()
    assert llm.search_terms("coffee", 3) == ["coffee beans", "morning coffee", "coffee farm"]
    assert time.perf_counter() - start >= 0.9
    assert len(fake.hits("/v1/chat/completions")) == 2


def test_500_then_success(settings_env, fake):
    fake.route(
        "POST",
        "/v1/chat/completions",
        openai_error(500, "boom", "server_error"),
        Reply(body=openai_chat(TERMS_JSON)),
    )
    llm = chain(settings_env, fake, "openai", MPT_RETRY_BASE_DELAY_S="0")
    assert llm.search_terms("coffee", 3)[0] == "coffee beans"
    assert len(fake.hits("/v1/chat/completions")) == 2


def test_timeout_is_retried_then_fails_over(settings_env, fake):
    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat(TERMS_JSON), delay_s=3))
    fake.route("POST", "/api/chat", Reply(body=ollama_reply(TERMS_JSON)))
    llm = chain(
        settings_env, fake, "openai,ollama", MPT_OPENAI__TIMEOUT_S="0.3", MPT_LLM_ATTEMPTS="2"
    )
    assert llm.search_terms("coffee", 3)[0] == "coffee beans"
    assert llm.name == "ollama"
    assert len(fake.hits("/v1/chat/completions")) == 2
    assert "timed out" in llm.errors[0] if llm.errors else True


def test_401_skips_to_the_next_provider_at_once(settings_env, fake):
    fake.route(
        "POST",
        "/v1/chat/completions",
        openai_error(401, f"Incorrect API key provided: {KEY}", "invalid_api_key"),
    )
    fake.route("POST", "/api/chat", Reply(body=ollama_reply(SCRIPT_JSON)))
    llm = chain(settings_env, fake, "openai,ollama")
    llm.write_script("coffee", "en", 3)
    assert llm.name == "ollama"
    assert len(fake.hits("/v1/chat/completions")) == 1  # no retry on a rejected key
    assert fake.hits("/api/chat")[0].json()["model"] == "llama3.2"


def test_unparsable_reply_is_retried(settings_env, fake):
    fake.route(
        "POST",
        "/v1/chat/completions",
        Reply(body=openai_chat("")),  # empty
        Reply(body=openai_chat("```json\n```\n**")),  # only markup
        Reply(body=openai_chat('{"paragraphs": []}')),  # valid JSON, wrong shape
        Reply(body=openai_chat(SCRIPT_JSON)),
    )
    llm = chain(settings_env, fake, "openai", MPT_RETRY_BASE_DELAY_S="0", MPT_LLM_ATTEMPTS="4")
    assert "Coffee beans grow" in llm.write_script("coffee", "en", 3)
    assert len(fake.hits("/v1/chat/completions")) == 4
    assert llm.warnings == []


def test_unparsable_replies_move_on_to_the_next_provider(settings_env, fake):
    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat("   ")))
    fake.route("POST", "/api/chat", Reply(body=ollama_reply(SCRIPT_JSON)))
    llm = chain(settings_env, fake, "openai,ollama", MPT_RETRY_BASE_DELAY_S="0")
    assert "Coffee beans grow" in llm.write_script("coffee", "en", 3)
    assert llm.name == "ollama" and len(fake.hits("/v1/chat/completions")) == 3


PROSE = (
    "Sure! Here is your narration.\n\n**Coffee** beans grow on small trees near the "
    "equator. ☕\nCaffeine blocks the signals that make you feel tired."
)


def test_a_reply_in_prose_is_the_script(settings_env, fake):
    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat(PROSE)))
    llm = chain(settings_env, fake, "openai", MPT_RETRY_BASE_DELAY_S="0")
    text = llm.write_script("coffee", "en", 3)
    assert "Coffee beans grow on small trees near the equator." in text
    assert "*" not in text and "☕" not in text
    assert len(fake.hits("/v1/chat/completions")) == 1  # taken at once, not retried
    assert llm.warnings == ["openai answered in prose instead of JSON: its reply is the script"]


def test_reasoning_before_the_answer_is_ignored(settings_env, fake):
    thought = "<think>The user wants JSON {not this}.</think>\n" + SCRIPT_JSON
    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat(thought)))
    llm = chain(settings_env, fake, "openai")
    assert "Coffee beans grow" in llm.write_script("coffee", "en", 3)
    assert llm.warnings == []


def test_each_provider_is_asked_for_json_in_its_own_way(settings_env, fake):
    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat(SCRIPT_JSON)))
    fake.route("POST", "/v1beta/models/", Reply(body=gemini_reply(TERMS_JSON)))
    fake.route("POST", "/api/chat", Reply(body=ollama_reply(TERMS_JSON)))
    chain(settings_env, fake, "openai").write_script("coffee", "en", 3)
    assert fake.hits("/v1/chat/completions")[0].json()["response_format"] == {"type": "json_object"}
    chain(settings_env, fake, "gemini").search_terms("coffee", 3)
    config = fake.hits("/v1beta/models/")[0].json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "terms" in config["responseSchema"]["properties"]
    chain(settings_env, fake, "ollama").search_terms("coffee", 3)
    fmt = fake.hits("/api/chat")[0].json()["format"]
    assert fmt["type"] == "object" and "terms" in fmt["properties"]


def test_an_endpoint_without_json_mode_is_asked_again_without_it(settings_env, fake):
    refused = Reply(
        400,
        {
            "error": {
                "message": "response_format is not supported by this model",
                "type": "invalid_request_error",
                "param": "response_format",
                "code": None,
            }
        },
    )
    fake.route("POST", "/v1/chat/completions", refused, Reply(body=openai_chat(TERMS_JSON)))
    llm = chain(settings_env, fake, "openai")
    assert llm.search_terms("coffee", 3)[0] == "coffee beans"
    first, second = (r.json() for r in fake.hits("/v1/chat/completions"))
    assert "response_format" in first and "response_format" not in second


def test_terms_in_prose_leave_terms_to_keyword_extraction(settings_env, fake):
    from tasks.script import make_script
    from tasks.terms import make_terms

    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat("Coffee, beans, farms.")))
    chain(settings_env, fake, "openai")
    terms = make_terms(make_script("", "Coffee beans grow near the equator in the hills."))
    assert terms.source == "keywords" and len(terms.terms) >= 3
    assert terms.warnings == [
        "openai answered the search-terms request in prose: search terms come from keyword "
        "extraction"
    ]


def test_malformed_http_body_is_a_failure_not_a_crash(settings_env, fake):
    fake.route("POST", "/v1/chat/completions", Reply(200, b"{not json"))
    fake.route("POST", "/api/chat", Reply(body=ollama_reply(TERMS_JSON)))
    llm = chain(settings_env, fake, "openai,ollama", MPT_RETRY_BASE_DELAY_S="0")
    assert llm.search_terms("coffee", 3)
    assert llm.name == "ollama"


def test_every_provider_failing_lists_each_error(settings_env, fake):
    fake.route("POST", "/v1/chat/completions", openai_error(500, "down", "server_error"))
    fake.route("POST", "/api/chat", Reply(404, {"error": "model 'llama3.2' not found"}))
    llm = chain(settings_env, fake, "openai,ollama", MPT_RETRY_BASE_DELAY_S="0")
    with pytest.raises(StageError) as info:
        llm.write_script("coffee", "en", 3)
    message = str(info.value)
    assert message.startswith("no LLM provider answered: openai: 500")
    assert "ollama: 404" in message and "not found" in message


def test_only_rejected_keys_is_bad_input_and_never_shows_the_key(settings_env, fake):
    fake.route(
        "POST",
        "/v1/chat/completions",
        openai_error(401, f"Incorrect API key provided: {KEY}", "invalid_api_key"),
    )
    fake.route(
        "POST", "/v1beta/models/", gemini_error(403, "API key not valid", "PERMISSION_DENIED")
    )
    llm = chain(settings_env, fake, "openai,gemini")
    with pytest.raises(BadInput) as info:
        llm.write_script("coffee", "en", 3)
    assert "every LLM provider rejected its key" in str(info.value)
    assert KEY not in str(info.value)


def test_gemini_generate_content(settings_env, fake):
    fake.route(
        "POST",
        "/v1beta/models/",
        gemini_error(429, "Resource exhausted", "RESOURCE_EXHAUSTED"),
        Reply(body=gemini_reply(SCRIPT_JSON)),
    )
    llm = chain(settings_env, fake, "gemini", MPT_RETRY_BASE_DELAY_S="0")
    assert "Coffee beans" in llm.write_script("coffee", "en", 3)
    req = fake.hits("/v1beta/models/")[-1]
    assert req.path.split("?")[0] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert req.headers["x-goog-api-key"] == KEY
    assert "coffee" in req.json()["contents"][0]["parts"][0]["text"]


def test_azure_deployment_path_and_api_version(settings_env, fake):
    fake.route(
        "POST", "/openai/deployments/scripts/chat/completions", Reply(body=openai_chat(SCRIPT_JSON))
    )
    llm = chain(
        settings_env,
        fake,
        "azure",
        MPT_AZURE__API_KEY=KEY,
        MPT_AZURE__BASE_URL=fake.url,
        MPT_AZURE__DEPLOYMENT="scripts",
        MPT_AZURE__API_VERSION="2024-10-21",
    )
    llm.write_script("coffee", "en", 3)
    req = fake.hits("/openai/deployments/scripts/chat/completions")[0]
    assert "api-version=2024-10-21" in req.path
    assert req.headers["api-key"] == KEY


@pytest.mark.parametrize("name", ["deepseek", "moonshot", "qwen", "compatible"])
def test_openai_compatible_providers_use_their_base_url_and_model(settings_env, fake, name):
    fake.route("POST", f"/{name}/v1/chat/completions", Reply(body=openai_chat(TERMS_JSON)))
    upper = name.upper()
    llm = chain(
        settings_env,
        fake,
        name,
        **{
            f"MPT_{upper}__API_KEY": KEY,
            f"MPT_{upper}__BASE_URL": f"{fake.url}/{name}/v1",
            f"MPT_{upper}__MODEL": f"{name}-model",
        },
    )
    llm.search_terms("coffee", 3)
    assert llm.name == name
    assert fake.hits(f"/{name}/v1/chat/completions")[0].json()["model"] == f"{name}-model"


def test_unknown_provider_name_is_bad_input(settings_env, fake):
    settings_env(MPT_LLM__PROVIDERS="openai,skynet")
    with pytest.raises(BadInput, match="unknown LLM provider 'skynet'"):
        configured_llm()


def _cli_env(fake, **extra: str) -> dict[str, str]:
    """The environment a user's shell would give `mpt`: the CLI's own log defaults apply."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_LEVEL"}
    keys = {
        "MPT_LLM__PROVIDERS": "openai",
        "MPT_OPENAI__API_KEY": KEY,
        "MPT_OPENAI__BASE_URL": f"{fake.url}/v1",
    }
    return env | keys | extra


def test_cli_makes_a_video_from_a_topic_and_logs_no_secret(fake, tmp_path):
    import subprocess

    from .test_cli import MPT, REPO

    social = json.dumps(
        {
            "title": "Why coffee **wakes** you",
            "description": "A cup explained.",
            "hashtags": ["coffee", "#Morning Routine", "#coffee"],
        }
    )

    def answer(request) -> Reply:  # terms and social are asked at the same time
        prompt = request.json()["messages"][1]["content"]
        if "scenes" in prompt:  # the storyboard: queries per scene
            return Reply(body=openai_chat(storyboard_json(prompt)))
        if "search queries" in prompt:
            return Reply(body=openai_chat(TERMS_JSON))
        if "hashtags" in prompt:
            return Reply(body=openai_chat(social))
        return Reply(body=openai_chat(SCRIPT_JSON))

    fake.route("POST", "/v1/chat/completions", answer)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            *MPT,
            "make",
            "why coffee wakes you up",
            "--resolution",
            "540p",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_cli_env(fake, PREFECT_LOGGING_LEVEL="DEBUG"),  # noisiest logs: still no key
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads(proc.stdout)
    assert manifest["script_source"] == "openai"
    assert manifest["terms"] == ["coffee beans", "morning coffee", "coffee farm"]
    assert "Caffeine blocks the signals" in manifest["script"]
    assert manifest["warnings"] == []
    assert manifest["social"] == {
        "title": "Why coffee wakes you",
        "description": "A cup explained.",
        "hashtags": ["#coffee", "#MorningRoutine"],
    }
    assert manifest["stages"]["social"]["state"] == "Completed"
    everything = (
        proc.stdout
        + proc.stderr
        + "".join(p.read_text(errors="replace") for p in out.iterdir() if p.suffix != ".mp4")
    )
    assert KEY not in everything
    assert subprocess.run(["grep", "-rl", KEY, str(out)], capture_output=True).stdout == b""


def test_cli_makes_a_video_when_the_model_answers_in_prose(fake, tmp_path):
    """Many local models ignore a JSON instruction: the run goes on with the prose."""
    import subprocess

    from .test_cli import MPT, REPO

    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat(PROSE)))
    proc = subprocess.run(
        [*MPT, "make", "coffee in prose", "--resolution", "540p", "--fps", "15"]
        + ["--out", str(tmp_path / "out"), "--json"],
        capture_output=True,
        text=True,
        env=_cli_env(fake),
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads(proc.stdout)
    assert manifest["script_source"] == "openai"
    assert manifest["sentences"][0]["text"] == "Sure!"
    assert "Coffee beans grow on small trees near the equator." in manifest["script"]
    assert manifest["warnings"][:2] == [
        "openai answered in prose instead of JSON: its reply is the script",
        "search terms come from keyword extraction (the script was prose)",
    ]
    # Script and social asked the model; terms did not (they come from the prose itself).
    assert len(fake.hits("/v1/chat/completions")) == 2
    assert manifest["social"] is None


def test_cli_rejected_key_is_one_line_without_the_key(fake, tmp_path):
    import subprocess

    from .test_cli import MPT, REPO

    fake.route(
        "POST",
        "/v1/chat/completions",
        openai_error(401, f"Incorrect API key provided: {KEY}", "invalid_api_key"),
    )
    proc = subprocess.run(
        [*MPT, "make", "coffee", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=_cli_env(fake),
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: script: every LLM provider rejected its key: openai: 401")
    assert KEY not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_providers_check_prints_what_answered(fake):
    import subprocess

    from .test_cli import MPT, REPO

    fake.route("POST", "/v1/chat/completions", Reply(body=openai_chat('{"ok": true}')))
    fake.route("POST", "/api/chat", Reply(500, {"error": "out of memory"}))
    proc = subprocess.run(
        [*MPT, "providers", "check"],
        capture_output=True,
        text=True,
        env=_cli_env(
            fake, MPT_LLM__PROVIDERS="openai,ollama", MPT_OLLAMA__BASE_URL=fake.url, COLUMNS="200"
        ),
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line for line in proc.stdout.splitlines() if "│ llm" in line}
    assert "yes" in rows["openai"] and "no" in rows["ollama"]
    assert "500 server error" in rows["ollama"]
