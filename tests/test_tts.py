"""Network voices through their real clients against local fakes (Edge at its library)."""

import io
import wave

import numpy as np
import pytest

from tasks.narration import synthesize
from tasks.script import make_script
from tasks.timings import word_timings

from .conftest import ffmpeg
from .fakes import Reply

KEY = "tts-SECRET-key-77"
SCRIPT = "Coffee grows near the equator. Roasting brings out the flavour."


def wav_bytes(seconds: float = 1.0, rate: int = 24000, hz: float = 220.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.4 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


@pytest.fixture
def env(settings_env):
    return lambda **values: settings_env(MPT_RETRY_BASE_DELAY_S="0", **values)


def speak(voice: str, tmp_path):
    return synthesize(make_script("", SCRIPT), voice, 1.0, 0.3, tmp_path)


def test_openai_tts_per_sentence(env, fake, tmp_path):
    fake.route(
        "POST",
        "/v1/audio/speech",
        Reply(body=wav_bytes(1.2), headers={"content-type": "audio/wav"}),
    )
    env(MPT_OPENAI__API_KEY=KEY, MPT_OPENAI__BASE_URL=f"{fake.url}/v1")
    n = speak("openai:alloy", tmp_path)
    assert n.voice == "openai:alloy" and n.sample_rate == 24000 and not n.warnings
    assert len(n.sentences) == 2 and n.sentences[1].start_s > n.sentences[0].end_s
    body = fake.hits("/v1/audio/speech")[0].json()
    assert body["voice"] == "alloy" and body["response_format"] == "wav"
    assert body["input"] == "Coffee grows near the equator."
    assert fake.hits("/v1/audio/speech")[0].headers["authorization"] == f"Bearer {KEY}"


def test_azure_speech_ssml_and_retry_after(env, fake, tmp_path):
    fake.route(
        "POST",
        "/cognitiveservices/v1",
        Reply(429, b"Too many requests", {"retry-after": "1", "content-type": "text/plain"}),
        Reply(body=wav_bytes(1.0), headers={"content-type": "audio/wav"}),
    )
    env(MPT_AZURE_SPEECH__API_KEY=KEY, MPT_AZURE_SPEECH__BASE_URL=fake.url)
    n = speak("azure:en-US-JennyNeural", tmp_path)
    assert n.voice == "azure:en-US-JennyNeural"
    req = fake.hits("/cognitiveservices/v1")[1]
    assert req.headers["ocp-apim-subscription-key"] == KEY
    assert req.headers["x-microsoft-outputformat"] == "riff-24khz-16bit-mono-pcm"
    ssml = req.body.decode()
    assert "<voice name='en-US-JennyNeural'>" in ssml and "Coffee grows" in ssml


def test_gpt_sovits_api(env, fake, tmp_path):
    fake.route(
        "POST",
        "/tts",
        Reply(body=wav_bytes(0.8, rate=32000), headers={"content-type": "audio/wav"}),
    )
    env(
        MPT_SOVITS__BASE_URL=fake.url,
        MPT_SOVITS__REF_AUDIO_PATH="/refs/narrator.wav",
        MPT_SOVITS__PROMPT_TEXT="Hello there.",
    )
    n = speak("sovits:narrator", tmp_path)
    assert n.sample_rate == 32000
    body = fake.hits("/tts")[0].json()
    assert body["ref_audio_path"] == "/refs/narrator.wav" and body["media_type"] == "wav"
    assert body["text"] == "Coffee grows near the equator." and body["text_lang"] == "en"


def test_edge_word_boundaries_become_word_timings(env, monkeypatch, tmp_path):
    """Faked at the library boundary: Edge's websocket protocol is not re-implemented."""
    import edge_tts

    mp3 = tmp_path / "s.mp3"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=f=200:d=1.5:sample_rate=24000", "-c:a", "libmp3lame", str(mp3)
    )
    calls = []

    class FakeCommunicate:
        def __init__(self, text, voice, rate="+0%", boundary="SentenceBoundary", **kw):
            calls.append((text, voice, rate, boundary))
            self.words = text.split()

        def stream_sync(self):
            yield {"type": "audio", "data": mp3.read_bytes()}
            for i, w in enumerate(self.words):
                yield {
                    "type": "WordBoundary",
                    "offset": int((0.1 + 0.25 * i) * 1e7),
                    "duration": int(0.2 * 1e7),
                    "text": w.strip("."),
                }

    monkeypatch.setattr(edge_tts, "Communicate", FakeCommunicate)
    env()
    n = speak("edge:en-US-AriaNeural", tmp_path)
    assert calls[0][1:] == ("en-US-AriaNeural", "+0%", "WordBoundary")
    first = n.sentences[0].words
    # The script's own words (with their punctuation), at the times Edge reported.
    assert [w.text for w in first] == ["Coffee", "grows", "near", "the", "equator."]
    assert first[1].start_s == pytest.approx(0.35, abs=0.01)
    assert first[4].start_s == pytest.approx(1.1, abs=0.01)
    second = n.sentences[1]
    assert second.words[0].start_s > n.sentences[0].end_s


def test_failing_network_voice_falls_back_to_the_offline_voice(env, fake, tmp_path):
    fake.route("POST", "/v1/audio/speech", Reply(500, {"error": {"message": "down"}}))
    env(MPT_OPENAI__API_KEY=KEY, MPT_OPENAI__BASE_URL=f"{fake.url}/v1", MPT_LLM_ATTEMPTS="2")
    n = speak("openai:alloy", tmp_path)
    assert n.voice == "piper:en_US-joe-medium"
    assert n.warnings and n.warnings[0].startswith("voice openai:alloy failed (500")
    assert len(fake.hits("/v1/audio/speech")) == 2  # retried once, then handed over


def test_rejected_key_without_fallback_is_bad_input(env, fake, tmp_path):
    from blocks.errors import BadInput

    fake.route("POST", "/cognitiveservices/v1", Reply(401, b"", {"content-type": "text/plain"}))
    env(
        MPT_AZURE_SPEECH__API_KEY=KEY,
        MPT_AZURE_SPEECH__BASE_URL=fake.url,
        MPT_TTS_FALLBACK_VOICE="",
    )
    with pytest.raises(BadInput, match="voice azure:en-US-JennyNeural failed"):
        speak("azure:en-US-JennyNeural", tmp_path)
    assert len(fake.hits("/cognitiveservices/v1")) == 1


def test_network_voice_ids_are_checked_without_a_network():
    from blocks.errors import BadInput
    from flows.preflight import preflight
    from spec import VideoSpec

    spec = VideoSpec(script="hi", voice="edge:en-US-AriaNeural")
    assert preflight(spec).voice == "edge:en-US-AriaNeural"
    with pytest.raises(BadInput, match="unknown voice 'edge:'"):
        preflight(VideoSpec(script="hi", voice="edge:"))


def test_cli_lists_edge_voices(monkeypatch):
    import edge_tts
    from typer.testing import CliRunner

    from api.cli.main import app

    async def fake_list():
        return [{"ShortName": "en-US-AriaNeural", "Locale": "en-US", "Gender": "Female"}]

    monkeypatch.setattr(edge_tts, "list_voices", fake_list)
    result = CliRunner().invoke(app, ["voices", "--provider", "edge"])
    assert result.exit_code == 0
    assert result.output.strip() == "edge:en-US-AriaNeural\ten-US"


def test_words_of_a_voice_without_timings_come_from_recognition(env, fake, tmp_path):
    """OpenAI TTS reports no word times: recognition of the narration supplies them."""
    reference = synthesize(
        make_script("", SCRIPT), "piper:en_US-joe-medium", 1.0, 0.0, tmp_path / "ref"
    )
    with wave.open(str(reference.audio)) as w:
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    samples = np.frombuffer(data, np.int16)
    cut = int(reference.sentences[0].end_s * rate) + rate // 20
    replies = []
    for part in (samples[:cut], samples[cut:]):  # one reply per sentence, as the API would
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(part.tobytes())
        replies.append(Reply(body=buf.getvalue(), headers={"content-type": "audio/wav"}))
    fake.route("POST", "/v1/audio/speech", *replies)
    env(MPT_OPENAI__API_KEY=KEY, MPT_OPENAI__BASE_URL=f"{fake.url}/v1")
    n = speak("openai:alloy", tmp_path / "out")
    words = n.sentences[0].words
    first = n.sentences[0]
    proportional = [w.start_s for w in word_timings(first.text, first.start_s, first.end_s)]
    assert [w.start_s for w in words] != proportional  # measured, not spread evenly
    assert all(n.sentences[0].start_s <= w.start_s <= n.sentences[0].end_s for w in words)
    assert words == sorted(words, key=lambda w: w.start_s)
