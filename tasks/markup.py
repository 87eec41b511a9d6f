"""Markup a script may hold for the voice: pauses, `[pause]` or `[pause: 1.5s]` (also `500ms`),
between words or sentences, in any language. The markup is taken out of the text before
anything else sees it (subtitles, terms, the social text); each pause is remembered by the
word it follows, and the narration makes it real silence.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from blocks.errors import BadInput
from spec.scenes import PAUSE_DEFAULT_S, PAUSE_MAX_S
from tasks.text import CJK, split_words

# Anything in square brackets that starts with "pause" is meant as a pause: a malformed one
# is refused rather than read aloud.
_MARKUP = re.compile(r"\[\s*pause\b([^\]]*)\]", re.IGNORECASE)
_VALUE = re.compile(r"^\s*(?::\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)?\s*)?$", re.IGNORECASE)


class Pause(BaseModel):
    """Silence after word `word` of sentence `sentence` (-1: before the sentence's first)."""

    sentence: int
    word: int
    seconds: float


def parse_pauses(text: str) -> tuple[str, list[tuple[int, float]]]:
    """The text without markup, and each pause as (words of the text before it, seconds)."""
    clean, pauses, at = [], [], 0
    for match in _MARKUP.finditer(text):
        value = _VALUE.match(match.group(1))
        if value is None:
            raise BadInput(
                f"script: {match.group(0)!r} is not a pause; write [pause], [pause: 1.5s] or "
                f"[pause: 500ms] (at most {PAUSE_MAX_S:g} s)"
            )
        number, unit = value.group(1), (value.group(2) or "s").lower()
        seconds = PAUSE_DEFAULT_S if number is None else float(number)
        seconds = seconds / 1000 if unit == "ms" else seconds
        if seconds > PAUSE_MAX_S:
            raise BadInput(f"script: {match.group(0)!r} is longer than {PAUSE_MAX_S:g} s")
        before = text[at : match.start()]
        after = text[match.end() :]
        if after[:1] not in ("", " ", "\t", "\n") and not _wordy(after[0]):
            before = before.rstrip(" \t")  # "spoils [pause]!" is "spoils!"
        clean.append(before)
        pauses.append((len(split_words("".join(clean))), round(seconds, 3)))
        # The markup stood between words: a space keeps two Latin words apart, and none is
        # added where the script had none around it (CJK text) or had one already.
        left = "".join(clean)[-1:]
        if left and after and _joins(left, after[0]):
            clean.append(" ")
        at = match.end()
    clean.append(text[at:])
    return "".join(clean), pauses


def _wordy(ch: str) -> bool:
    return ch.isalnum() or bool(CJK.match(ch))


def _joins(left: str, right: str) -> bool:
    """Whether two characters would run into one word without a space between them."""
    return left.isalnum() and right.isalnum() and not (CJK.match(left) or CJK.match(right))


def place_pauses(pauses: list[tuple[int, float]], text: str, sentences: list[str]) -> list[Pause]:
    """Each pause at the sentence and word it follows. The sentences' words are the text's
    words in order, less any fragment the splitter dropped (a stray "...")."""
    words = [w.text for w in split_words(text)]
    # The sentence and word index each of the text's words became, if it was kept.
    place: list[tuple[int, int] | None] = []
    k = 0
    for s, sentence in enumerate(sentences):
        for w, word in enumerate(split_words(sentence)):
            while k < len(words) and words[k] != word.text:
                place.append(None)
                k += 1
            place.append((s, w))
            k += 1
    place += [None] * (len(words) - len(place))
    out: dict[tuple[int, int], float] = {}
    for before, seconds in pauses:
        kept = [p for p in place[:before] if p is not None]
        at = kept[-1] if kept else (0, -1)  # before the first word: ahead of sentence 0
        out[at] = round(out.get(at, 0.0) + seconds, 3)  # pauses side by side add up
    return [Pause(sentence=s, word=w, seconds=v) for (s, w), v in sorted(out.items())]
