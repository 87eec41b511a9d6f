"""What the narration stage measures: when each sentence and each word is spoken.

Shared by the voices (tasks/narration.py) and recognition (tasks/alignment.py), which both
produce a `Narration`, and read by the subtitles and the render.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from tasks.files import write_text_atomic
from tasks.text import split_words

# Samples below this (of int16 full scale) count as silence when measuring speech extent.
SILENCE_THRESHOLD = 300


class WordTiming(BaseModel):
    text: str  # as written in the script
    start_s: float
    end_s: float
    spaced: bool = True  # a space stood before it in the script


class SentenceTiming(BaseModel):
    text: str
    start_s: float
    end_s: float
    words: list[WordTiming]


class Narration(BaseModel):
    audio: Path
    timings: Path
    voice: str
    duration_s: float
    sample_rate: int
    sentences: list[SentenceTiming]
    warnings: list[str] = []

    def files(self) -> list[Path]:
        return [self.audio, self.timings]


def speech_extent(audio: np.ndarray) -> tuple[int, int]:
    """First and last sample above the silence threshold (the whole chunk if all quiet)."""
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return 0, len(audio)
    return int(loud[0]), int(loud[-1]) + 1


def word_timings(text: str, start_s: float, end_s: float) -> list[WordTiming]:
    """Spread the sentence's measured span over its words in proportion to their length."""
    words = split_words(text)
    weights = [max(1, sum(ch.isalnum() for ch in w.text)) for w in words]
    total = sum(weights) or 1
    span = end_s - start_s
    out, t = [], start_s
    for word, weight in zip(words, weights, strict=True):
        d = span * weight / total
        out.append(
            WordTiming(
                text=word.text, start_s=round(t, 3), end_s=round(t + d, 3), spaced=word.spaced
            )
        )
        t += d
    return out


def finished_narration(
    audio: Path, voice: str, duration: float, sample_rate: int, sentences: list[SentenceTiming]
) -> Narration:
    """The Narration of a finished voice track, with its timings.json written beside it."""
    timings = write_text_atomic(
        audio.with_name("timings.json"),
        json.dumps(
            {
                "voice": voice,
                "duration_s": duration,
                "sentences": [s.model_dump() for s in sentences],
            },
            ensure_ascii=False,
            indent=1,
        ),
    )
    return Narration(
        audio=audio,
        timings=timings,
        voice=voice,
        duration_s=round(duration, 3),
        sample_rate=sample_rate,
        sentences=sentences,
    )
