"""LLM providers as Prefect blocks, and the failover chain the script and terms stages call.

Each provider is a Block, built from `MPT_*` settings or saved in the Prefect UI and named
`block:NAME` in MPT_LLM__PROVIDERS (`blocks/saved.py`); it talks through its official SDK:
`openai` for OpenAI, DeepSeek, Moonshot, Qwen (DashScope's compatible mode) and any
OpenAI-compatible endpoint; `openai.AzureOpenAI` for Azure; `google-genai` for Gemini;
`ollama` for Ollama. SDK-level retries are off: the chain decides, so a transient fault is
retried with backoff (honouring Retry-After) and a rejected key moves on to the next
provider at once.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, SecretStr, ValidationError

from blocks.calls import ProviderError, backoff_s, classify, short
from blocks.errors import BadInput, StageError
from blocks.saved import digest, is_saved, load_saved, saved_label

log = logging.getLogger(__name__)


@runtime_checkable
class LLM(Protocol):
    name: str

    def write_script(self, topic: str, language: str, paragraphs: int) -> str:
        """Narration text for `topic` in `language`, plain prose, no markup."""
        ...

    def scene_terms(self, scenes: list[str]) -> list[list[str]] | None:
        """1 to 3 queries per scene, in the scenes' order (None: the reply would not do)."""
        ...

    def search_terms(self, script: str, count: int) -> list[str]:
        """`count` short English stock-footage search queries for `script`."""
        ...


class OpenAICompatibleLLM(Block):
    """OpenAI, or any server speaking its chat completions API (DeepSeek, Moonshot, Qwen...)."""

    _block_type_name = "MPT OpenAI-compatible LLM"
    provider: str = Field("openai", description="A name for reports: openai, deepseek, ...")
    api_key: SecretStr | None = None
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    timeout_s: float = 60.0

    def complete(self, system: str, user: str, schema: type[BaseModel] | None = None) -> str:
        import openai

        client = openai.OpenAI(
            api_key=self.api_key.get_secret_value() if self.api_key else "unused",
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=0,
        )
        return _chat_json(
            client,
            schema is not None,
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0.7,
        )


class AzureOpenAILLM(Block):
    """A model deployed on Azure OpenAI."""

    _block_type_name = "MPT Azure OpenAI LLM"
    provider: str = "azure"
    api_key: SecretStr | None = None
    endpoint: str = Field(..., description="https://<resource>.openai.azure.com")
    deployment: str
    api_version: str = "2024-10-21"
    timeout_s: float = 60.0

    def complete(self, system: str, user: str, schema: type[BaseModel] | None = None) -> str:
        import openai

        client = openai.AzureOpenAI(
            api_key=self.api_key.get_secret_value() if self.api_key else "unused",
            azure_endpoint=self.endpoint,
            azure_deployment=self.deployment,
            api_version=self.api_version,
            timeout=self.timeout_s,
            max_retries=0,
        )
        return _chat_json(
            client,
            schema is not None,
            model=self.deployment,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        )


class GeminiLLM(Block):
    """Google's Gemini models."""

    _block_type_name = "MPT Gemini LLM"
    provider: str = "gemini"
    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str = "gemini-2.0-flash"
    timeout_s: float = 60.0

    def complete(self, system: str, user: str, schema: type[BaseModel] | None = None) -> str:
        from google import genai
        from google.genai import types

        client = genai.Client(
            api_key=self.api_key.get_secret_value() if self.api_key else "unused",
            http_options=types.HttpOptions(
                base_url=self.base_url, api_version="v1beta", timeout=int(self.timeout_s * 1000)
            ),
        )
        reply = client.models.generate_content(
            model=self.model,
            contents=user,
            # JSON mode with the reply's schema, which Gemini then follows.
            config=types.GenerateContentConfig(
                system_instruction=system,
                response_mime_type="application/json" if schema else None,
                response_schema=schema,
            ),
        )
        return reply.text or ""


class OllamaLLM(Block):
    """A model served by Ollama (local, no key)."""

    _block_type_name = "MPT Ollama LLM"
    provider: str = "ollama"
    base_url: str = "http://127.0.0.1:11434"
    model: str = "llama3.2"
    timeout_s: float = 120.0

    def complete(self, system: str, user: str, schema: type[BaseModel] | None = None) -> str:
        import ollama

        client = ollama.Client(host=self.base_url, timeout=self.timeout_s)
        reply = client.chat(
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            # Structured outputs: the reply is constrained to the schema.
            format=schema.model_json_schema() if schema else None,
        )
        return reply.message.content or ""


def _chat_json(client: Any, json_mode: bool, **request: Any) -> str:
    """A chat completion in JSON mode (`response_format`) when asked for; an endpoint that
    refuses the parameter (some OpenAI-compatible servers do) is asked again without it."""
    import openai

    if json_mode:
        try:
            reply = client.chat.completions.create(
                **request, response_format={"type": "json_object"}
            )
            return reply.choices[0].message.content or ""
        except openai.BadRequestError as exc:
            if "response_format" not in str(exc).lower():
                raise
            log.info("%s refused JSON mode; asking without it", request.get("model"))
    reply = client.chat.completions.create(**request)
    return reply.choices[0].message.content or ""


ProviderBlock = OpenAICompatibleLLM | AzureOpenAILLM | GeminiLLM | OllamaLLM
LLM_BLOCK_TYPES = (OpenAICompatibleLLM, AzureOpenAILLM, GeminiLLM, OllamaLLM)
OPENAI_COMPATIBLE = ("openai", "deepseek", "moonshot", "qwen", "compatible")
LLM_PROVIDERS = (*OPENAI_COMPATIBLE, "azure", "gemini", "ollama")


def block_from_settings(name: str) -> ProviderBlock:
    """The provider block for `name`, configured from MPT_<NAME>__* settings."""
    from blocks.settings import get_settings

    s = get_settings()
    if name in OPENAI_COMPATIBLE:
        cfg = getattr(s, name)
        if not cfg.base_url or not cfg.model:
            raise BadInput(f"set MPT_{name.upper()}__BASE_URL and MPT_{name.upper()}__MODEL")
        return OpenAICompatibleLLM(
            provider=name,
            api_key=cfg.api_key,
            base_url=cfg.base_url,
            model=cfg.model,
            timeout_s=cfg.timeout_s,
        )
    if name == "azure":
        cfg = s.azure
        if not cfg.base_url or not cfg.deployment:
            raise BadInput(
                "set MPT_AZURE__BASE_URL (the resource endpoint) and MPT_AZURE__DEPLOYMENT"
            )
        return AzureOpenAILLM(
            api_key=cfg.api_key,
            endpoint=cfg.base_url,
            deployment=cfg.deployment,
            api_version=cfg.api_version,
            timeout_s=cfg.timeout_s,
        )
    if name == "gemini":
        cfg = s.gemini
        return GeminiLLM(
            api_key=cfg.api_key,
            base_url=cfg.base_url,
            model=cfg.model or "gemini-2.0-flash",
            timeout_s=cfg.timeout_s,
        )
    if name == "ollama":
        cfg = s.ollama
        return OllamaLLM(
            base_url=cfg.base_url or "http://127.0.0.1:11434",
            model=cfg.model or "llama3.2",
            timeout_s=cfg.timeout_s,
        )
    raise BadInput(
        f"unknown LLM provider '{name}'; known: {', '.join(LLM_PROVIDERS)}, or block:NAME"
    )


def provider_block(name: str) -> ProviderBlock:
    """A built-in provider from settings, or `block:NAME`: an LLM block saved on the server."""
    if is_saved(name):
        return load_saved(name, LLM_BLOCK_TYPES, "LLM")
    return block_from_settings(name)


def provider_name(block: ProviderBlock) -> str:
    """The provider's name in reports: `block:NAME` for a saved block."""
    return saved_label(block, block.provider)


# --- prompts and defensive parsing -------------------------------------------------------

SYSTEM = (
    "You write narration for short vertical videos. You answer with one JSON object "
    "and nothing else: no code fences, no commentary."
)


class ScriptReply(BaseModel):
    title: str = ""
    paragraphs: list[str] = Field(min_length=1)


class SocialReply(BaseModel):
    """What a creator posts with the video."""

    title: str = Field(min_length=1, max_length=150)
    description: str = Field(min_length=1, max_length=2000)
    hashtags: list[str] = Field(min_length=1, max_length=15)


class TermsReply(BaseModel):
    terms: list[str] = Field(min_length=1)


class SceneQueries(BaseModel):
    terms: list[str] = Field(min_length=1, max_length=5)


class StoryboardReply(BaseModel):
    """One entry of search queries per scene, in the scenes' order."""

    scenes: list[SceneQueries] = Field(min_length=1)


def script_prompt(topic: str, language: str, paragraphs: int) -> str:
    return (
        f'Write the narration for a short video about "{topic}", in the language with code '
        f'"{language}". Exactly {paragraphs} short paragraphs of plain spoken prose: no '
        "headings, lists, markdown, emojis, URLs or stage directions. Reply with JSON: "
        '{"title": "...", "paragraphs": ["...", "..."]}'
    )


def terms_prompt(script: str, count: int) -> str:
    return (
        f"Give {count} short English search queries (one to three words each) for stock video "
        "footage that would illustrate this narration. Reply with JSON: "
        f'{{"terms": ["...", "..."]}}\n\nNarration:\n{script[:4000]}'
    )


def storyboard_prompt(scenes: list[str]) -> str:
    numbered = "\n".join(f"{i}. {text[:600]}" for i, text in enumerate(scenes, 1))
    return (
        f"A short video has {len(scenes)} scenes, each narrated by the text below. For each "
        "scene give 1 to 3 short English search queries (one to three words each, whatever "
        "the narration's language) for stock video footage that shows what that scene says. "
        f"Reply with JSON with exactly {len(scenes)} entries, in the scenes' order: "
        '{"scenes": [{"terms": ["...", "..."]}, ...]}'
        f"\n\nScenes:\n{numbered}"
    )


def social_prompt(script: str, language: str) -> str:
    return (
        f'For a short video with this narration, write in the language "{language}" a title '
        "(under 80 characters), a two-sentence description, and 3 to 8 hashtags. Reply with "
        'JSON: {"title": "...", "description": "...", "hashtags": ["#...", "#..."]}'
        f"\n\nNarration:\n{script[:4000]}"
    )


def extract_json(text: str) -> Any:
    """The first JSON object in a reply, tolerating code fences and stray prose around it."""
    text = re.sub(r"```(?:json)?", "", text)
    start = text.find("{")
    if start < 0:
        raise ProviderError("bad_output", "reply holds no JSON object")
    depth, in_str, escape = 0, False, False
    for i, ch in enumerate(text[start:], start):
        if in_str:
            escape = ch == "\\" and not escape
            if ch == '"' and not escape:
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                try:
                    return json.loads(text[start : i + 1])
                except ValueError as exc:
                    raise ProviderError("bad_output", f"reply is not valid JSON: {exc}") from None
    raise ProviderError("bad_output", "reply's JSON object is cut off")


# Reasoning models (DeepSeek-R1, Qwen3, ...) put their thoughts before the answer.
_THINKING = re.compile(r"<think>.*?</think>", re.S | re.I)

_MARKUP = [
    (re.compile(r"```[\w-]*"), ""),  # code fences and their language tag
    (re.compile(r"https?://\S+"), ""),  # URLs are not read aloud
    (re.compile(r"\[[^\]]*\]|\([^)]*(music|pause|sfx|sound)[^)]*\)", re.I), ""),  # directions
    (re.compile(r"^\s*(#+|[-*•]|\d+[.)])\s+", re.M), ""),  # headings, bullets, numbering
    (re.compile(r"[*_`~#|<>]+"), ""),  # emphasis, code, tables, tags
]


def clean_narration(text: str) -> str:
    """Plain speakable text: markup, links, stage directions and emojis removed."""
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl, text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("So", "Cs", "Co"))
    return re.sub(r"[ \t]+", " ", text).strip()


# --- the failover chain --------------------------------------------------------------------


@dataclass
class LLMChain:
    """Providers tried in order; implements the `LLM` protocol the stages use."""

    blocks: list[ProviderBlock]
    attempts: int = 3
    base_delay_s: float = 2.0
    name: str = ""  # the provider that answered last
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # of the last request

    def _ask(
        self,
        prompt: str,
        parse: type[BaseModel],
        prose: Callable[[str], BaseModel | None] | None = None,
    ) -> BaseModel | None:
        """The first provider's reply that parses as `parse`. With `prose`, a reply that
        holds no JSON object (a model that ignored JSON mode) is handed to it instead, and
        the chain notes it in `warnings`; an empty reply or one of only markup is still
        unparsable: retried, then the next provider."""
        self.errors = []
        auth_only = True
        for block in self.blocks:
            secret = getattr(block, "api_key", None)
            label = provider_name(block)
            for attempt in range(1, self.attempts + 1):
                try:
                    text = _THINKING.sub("", block.complete(SYSTEM, prompt, parse))
                    try:
                        data = extract_json(text)
                    except ProviderError:
                        if prose is None:
                            raise
                        if not any(ch.isalnum() for ch in clean_narration(text)):
                            raise ProviderError("bad_output", "reply holds no text") from None
                        self.name = label
                        log.info("LLM %s answered in prose, not JSON", label)
                        return prose(text)
                    reply = parse.model_validate(data)
                    self.name = label
                    return reply
                except Exception as exc:  # noqa: BLE001 - classified just below
                    err = (
                        ProviderError("bad_output", short(str(exc)))
                        if isinstance(exc, ValidationError)
                        else classify(exc)
                    )
                message = _redact(str(err), secret)
                log.warning("LLM %s attempt %d: %s", label, attempt, message)
                if err.kind in ("auth", "fatal") or attempt == self.attempts:
                    break
                time.sleep(backoff_s(attempt, self.base_delay_s, err))
            auth_only = auth_only and err.kind == "auth"
            self.errors.append(f"{label}: {message}")
        summary = "; ".join(self.errors)
        if auth_only:
            raise BadInput(f"every LLM provider rejected its key: {summary}")
        raise StageError(f"no LLM provider answered: {summary}")

    def write_script(self, topic: str, language: str, paragraphs: int) -> str:
        """Narration text; a reply in prose is taken as the script itself (and noted in
        `warnings`, so search terms then come from keyword extraction)."""
        self.warnings = []

        def from_prose(text: str) -> ScriptReply:
            self.warnings.append(
                f"{self.name} answered in prose instead of JSON: its reply is the script"
            )
            return ScriptReply(paragraphs=[p for p in text.split("\n") if p.strip()])

        reply = self._ask(script_prompt(topic, language, paragraphs), ScriptReply, from_prose)
        assert isinstance(reply, ScriptReply)
        text = "\n".join(t for t in (clean_narration(p) for p in reply.paragraphs) if t)
        if not any(ch.isalnum() for ch in text):
            raise StageError(f"{self.name} wrote no speakable text")
        return text

    def social(self, script: str, language: str) -> SocialReply | None:
        """What to post with the video; None (and a note in `warnings`) for a prose reply,
        which asking again would only repeat."""
        self.warnings = []

        def from_prose(text: str) -> None:
            self.warnings.append(f"{self.name} answered the social-text request in prose")

        reply = self._ask(social_prompt(script, language), SocialReply, from_prose)
        if reply is None:
            return None
        assert isinstance(reply, SocialReply)
        tags = ["#" + re.sub(r"[^\w]", "", t) for t in reply.hashtags]
        return SocialReply(
            title=clean_narration(reply.title),
            description=clean_narration(reply.description),
            hashtags=[t for t in dict.fromkeys(tags) if len(t) > 1][:8] or ["#video"],
        )

    def scene_terms(self, scenes: list[str]) -> list[list[str]] | None:
        """1 to 3 queries per scene, from one request for the whole storyboard; None (and a
        note in `warnings`) for a reply in prose or with another number of scenes."""
        self.warnings = []

        def from_prose(text: str) -> None:
            self.warnings.append(f"{self.name} answered the storyboard request in prose")

        reply = self._ask(storyboard_prompt(scenes), StoryboardReply, from_prose)
        if reply is None:
            return None
        assert isinstance(reply, StoryboardReply)
        if len(reply.scenes) != len(scenes):
            self.warnings.append(
                f"{self.name} gave terms for {len(reply.scenes)} scenes, not {len(scenes)}"
            )
            return None
        return [
            [t for t in (clean_narration(q) for q in entry.terms) if t][:3]
            for entry in reply.scenes
        ]

    def search_terms(self, script: str, count: int) -> list[str]:
        """Search queries; none (and a note in `warnings`) when the reply was prose."""
        self.warnings = []

        def from_prose(text: str) -> None:
            self.warnings.append(f"{self.name} answered the search-terms request in prose")

        reply = self._ask(terms_prompt(script, count), TermsReply, from_prose)
        if reply is None:
            return []
        assert isinstance(reply, TermsReply)
        return [clean_narration(t) for t in reply.terms if clean_narration(t)][:count]


def _redact(message: str, secret: SecretStr | None) -> str:
    if secret is not None and secret.get_secret_value():
        message = message.replace(secret.get_secret_value(), "***")
    return message


def configured_llm() -> LLMChain | None:
    """The chain in MPT_LLM__PROVIDERS order, or None when no provider is configured."""
    from blocks.settings import get_settings

    s = get_settings()
    if not s.llm.providers:
        return None
    return LLMChain(
        blocks=[provider_block(n) for n in s.llm.providers],
        attempts=s.llm_attempts,
        base_delay_s=s.retry_base_delay_s,
    )


def llm_fingerprint() -> list[str]:
    """What the configured chain is, without secrets: part of the script stage's cache key."""
    chain = configured_llm()
    if chain is None:
        return []
    return [_fingerprint(b) for b in chain.blocks]


def _fingerprint(block: ProviderBlock) -> str:
    model = getattr(block, "model", getattr(block, "deployment", ""))
    if not block._block_document_name:
        return f"{block.provider}:{model}"
    # A saved block: its name, model and a digest of its fields, so editing the block in
    # the UI (model, base URL...) changes the cache key.
    return f"{provider_name(block)}:{block.provider}:{model}:{digest(block)}"
