"""Network voices as Prefect blocks: Edge TTS, Azure Speech, OpenAI TTS and GPT-SoVITS.

Each synthesizes one sentence at a time (the narration stage measures where each sentence
starts and ends in the final audio) and returns PCM samples, plus word timings where the
provider reports them (Edge's word boundaries). Errors are classified like the LLMs': the
narration stage retries transient ones and falls back to the offline voice. A voice block
saved in the Prefect UI speaks as `block:NAME:VOICE`.
"""

from __future__ import annotations

import io
from typing import Any, ClassVar
from xml.sax.saxutils import escape

import numpy as np
from prefect.blocks.core import Block
from pydantic import BaseModel, SecretStr

from blocks.audio import decode_mono
from blocks.calls import ProviderError, by_status, classify, http_request, short
from blocks.errors import BadInput, StageError
from blocks.saved import digest, load_saved

# "block" speaks through a voice block saved on the Prefect server: `block:NAME:VOICE`.
NETWORK_ENGINES = ("edge", "azure", "openai", "sovits", "block")


class Speech(BaseModel):
    """One sentence's audio as mono int16 samples, and word timings (seconds) if known."""

    model_config = {"arbitrary_types_allowed": True}
    samples: Any  # np.ndarray[int16]
    sample_rate: int
    words: list[tuple[str, float, float]] | None = None


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Any container/codec a provider sends (WAV, MP3, ...) → mono int16 samples."""
    if not data:
        raise ProviderError("transient", "empty audio")
    try:
        return decode_mono(io.BytesIO(data))
    except StageError as exc:
        raise ProviderError("fatal", f"reply is {short(str(exc))}") from None


def _post(url: str, timeout_s: float, **kwargs: Any) -> bytes:
    return http_request("POST", url, timeout_s, **kwargs).content


class EdgeTTS(Block):
    """Microsoft Edge's online voices through the `edge-tts` library (no key needed)."""

    _block_type_name = "MPT Edge TTS"

    def synthesize(self, text: str, voice: str, rate: float) -> Speech:
        import edge_tts

        percent = f"{round((rate - 1) * 100):+d}%"
        audio, words = bytearray(), []
        try:
            communicate = edge_tts.Communicate(text, voice, rate=percent, boundary="WordBoundary")
            for chunk in communicate.stream_sync():
                if chunk["type"] == "audio":
                    audio += chunk["data"]
                elif chunk["type"] == "WordBoundary":
                    start = chunk["offset"] / 1e7  # 100-ns ticks
                    words.append((chunk["text"], start, start + chunk["duration"] / 1e7))
        except Exception as exc:  # noqa: BLE001 - edge-tts raises many types; classify them
            raise _edge_error(exc) from None
        samples, sample_rate = decode_audio(bytes(audio))
        return Speech(samples=samples, sample_rate=sample_rate, words=words or None)

    def voices(self) -> list[tuple[str, str]]:
        import asyncio

        import edge_tts

        try:
            listed = asyncio.run(edge_tts.list_voices())
        except Exception as exc:  # noqa: BLE001
            raise _edge_error(exc) from None
        return sorted((f"edge:{v['ShortName']}", v.get("Locale", "")) for v in listed)


def _edge_error(exc: Exception) -> ProviderError:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return by_status(status, short(str(exc)))
    if type(exc).__name__ in ("NoAudioReceived", "UnexpectedResponse", "UnknownResponse"):
        return ProviderError("transient", type(exc).__name__)
    return classify(exc)


class AzureSpeechTTS(Block):
    """Azure AI Speech over its REST API, with SSML."""

    _block_type_name = "MPT Azure Speech TTS"
    # A pause inside a sentence is an SSML <break>, spoken in the same request.
    ssml_breaks: ClassVar[bool] = True
    api_key: SecretStr | None = None
    base_url: str = "https://eastus.tts.speech.microsoft.com"
    timeout_s: float = 30.0

    def synthesize(
        self, text: str, voice: str, rate: float, breaks: list[tuple[int, float]] | None = None
    ) -> Speech:
        """`breaks`: (character offset in `text`, seconds) of silences inside it."""
        lang = "-".join(voice.split("-")[:2])
        body, at = "", 0
        for offset, seconds in breaks or []:
            body += f"{escape(text[at:offset])}<break time='{round(seconds * 1000)}ms'/>"
            at = offset
        body += escape(text[at:])
        ssml = (
            f"<speak version='1.0' xml:lang='{lang}'><voice name='{escape(voice)}'>"
            f"<prosody rate='{rate:.2f}'>{body}</prosody></voice></speak>"
        )
        data = _post(
            f"{self.base_url.rstrip('/')}/cognitiveservices/v1",
            self.timeout_s,
            content=ssml.encode(),
            headers={
                "Ocp-Apim-Subscription-Key": self.api_key.get_secret_value()
                if self.api_key
                else "",
                "Content-Type": "application/ssml+xml",
                "X-Microsoft-OutputFormat": "riff-24khz-16bit-mono-pcm",
                "User-Agent": "moneyprinterturbo-plus",
            },
        )
        samples, sample_rate = decode_audio(data)
        return Speech(samples=samples, sample_rate=sample_rate)


class OpenAITTS(Block):
    """OpenAI's speech API, or a server speaking it."""

    _block_type_name = "MPT OpenAI TTS"
    api_key: SecretStr | None = None
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini-tts"
    timeout_s: float = 60.0

    def synthesize(self, text: str, voice: str, rate: float) -> Speech:
        import openai

        client = openai.OpenAI(
            api_key=self.api_key.get_secret_value() if self.api_key else "unused",
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=0,
        )
        try:
            reply = client.audio.speech.create(
                model=self.model, voice=voice, input=text, response_format="wav", speed=rate
            )
            data = reply.read()
        except Exception as exc:  # noqa: BLE001
            raise classify(exc) from None
        samples, sample_rate = decode_audio(data)
        return Speech(samples=samples, sample_rate=sample_rate)


class GPTSoVITSTTS(Block):
    """A GPT-SoVITS server's API (v2 `POST /tts`), cloning the voice of a reference clip."""

    _block_type_name = "MPT GPT-SoVITS TTS"
    base_url: str = "http://127.0.0.1:9880"
    ref_audio_path: str = ""
    prompt_text: str = ""
    prompt_lang: str = "en"
    text_lang: str = "en"
    timeout_s: float = 120.0

    def synthesize(self, text: str, voice: str, rate: float) -> Speech:
        data = _post(
            f"{self.base_url.rstrip('/')}/tts",
            self.timeout_s,
            json={
                "text": text,
                "text_lang": self.text_lang,
                "ref_audio_path": self.ref_audio_path or voice,
                "prompt_text": self.prompt_text,
                "prompt_lang": self.prompt_lang,
                "media_type": "wav",
                "streaming_mode": False,
                "speed_factor": rate,
            },
        )
        samples, sample_rate = decode_audio(data)
        return Speech(samples=samples, sample_rate=sample_rate)


TTSBlock = EdgeTTS | AzureSpeechTTS | OpenAITTS | GPTSoVITSTTS
TTS_BLOCK_TYPES = (EdgeTTS, AzureSpeechTTS, OpenAITTS, GPTSoVITSTTS)


def is_network_voice(voice_id: str) -> bool:
    """The shape of a network voice id: `ENGINE:NAME`, or `block:NAME:VOICE` (a saved block
    NAME speaking VOICE); its provider checks the names when it speaks."""
    engine, _, name = voice_id.partition(":")
    if engine == "block":
        block, _, voice = name.partition(":")
        return bool(block.strip() and voice.strip())
    return engine in NETWORK_ENGINES and bool(name.strip())


def tts_for(engine: str, name: str) -> tuple[TTSBlock, str]:
    """The block that speaks the voice `engine:name`, and the voice it is asked for."""
    if engine != "block":
        return tts_from_settings(engine), name
    ref, _, voice = name.partition(":")
    if not voice.strip():
        raise BadInput(f"voice block:{name}: give it as block:NAME:VOICE")
    return load_saved(f"block:{ref}", TTS_BLOCK_TYPES, "voice"), voice


def voice_fingerprint(voice_id: str) -> str:
    """For a saved voice block, its name and digest (part of the narration's cache key: an
    edited block speaks anew); empty for every other voice."""
    engine, _, name = voice_id.partition(":")
    if engine != "block":
        return ""
    block, _ = tts_for(engine, name)
    return f"block:{name.partition(':')[0]}:{digest(block)}"


def tts_from_settings(engine: str) -> TTSBlock:
    from blocks.settings import get_settings

    s = get_settings()
    if engine == "edge":
        return EdgeTTS()
    if engine == "azure":
        cfg = s.azure_speech
        return AzureSpeechTTS(api_key=cfg.api_key, base_url=cfg.base_url, timeout_s=cfg.timeout_s)
    if engine == "openai":
        cfg = s.openai
        return OpenAITTS(
            api_key=cfg.api_key,
            base_url=cfg.base_url,
            model=s.openai_tts_model,
            timeout_s=cfg.timeout_s,
        )
    if engine == "sovits":
        cfg = s.sovits
        return GPTSoVITSTTS(
            base_url=cfg.base_url,
            ref_audio_path=cfg.ref_audio_path,
            prompt_text=cfg.prompt_text,
            prompt_lang=cfg.prompt_lang,
            text_lang=cfg.text_lang,
            timeout_s=cfg.timeout_s,
        )
    raise ValueError(f"unknown TTS engine {engine}")
