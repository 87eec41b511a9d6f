"""Text rules every stage shares: sentences, words, and joining words back verbatim.

A script's words reach the screen exactly as the user wrote them. Words are what lies
between spaces ("3.5", "1,000", "10:30", "day-trippers", "it's", "e.g.", a URL stay whole),
except that each CJK character is a word of its own (CJK text has no spaces); every word
remembers whether a space preceded it, so joining words gives back the original text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_C = CJK.pattern
# Inside a run of non-space characters: a CJK character with the punctuation around it
# (「你 … 好」), or a run without CJK characters.
_TOKEN = re.compile(rf"[^\w\s]*{_C}[^\w\s]*|(?:(?!{_C})\S)+")

# End of a sentence: Latin end punctuation (closing quotes and brackets stay with it) before
# a space or the end, or CJK end punctuation, which needs no space.
_LATIN_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s|$)""")
_CJK_END = re.compile(r"""[。！？；]+["'”’」』）)]*""")
# Words after which a full stop does not end the sentence: titles, Latin abbreviations,
# initials (J.) and dotted acronyms (U.S., a.m.).
_ABBREVIATED = (
    "mr mrs ms mx dr prof sr jr st mt rev gen col capt lt sgt gov sen rep hon "
    "e.g i.e cf vs viz al approx ca est fig figs vol vols pp ed eds inc ltd co corp "
    "dept univ ave blvd rd jan feb mar apr jun jul aug sep sept oct nov dec"
)
_ABBREVIATIONS = frozenset(_ABBREVIATED.split())
_ACRONYM = re.compile(r"^(?:[A-Za-z]\.){2,}$|^[A-Z]\.$")


class Word(NamedTuple):
    text: str
    spaced: bool  # a space stood before it in the script (meaningless for the first word)


def is_cjk(language: str) -> bool:
    return language.split("-")[0] in {"zh", "ja", "ko"}


def detect_language(text: str) -> str:
    """A coarse guess good enough to pick wrapping and keyword rules."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    if sum(1 for ch in letters if "\u3040" <= ch <= "\u30ff") > len(letters) * 0.1:
        return "ja"
    if sum(1 for ch in letters if "\uac00" <= ch <= "\ud7af") > len(letters) * 0.3:
        return "ko"
    if sum(1 for ch in letters if CJK.match(ch)) > len(letters) * 0.3:
        return "zh"
    return "en"


def count_words(text: str) -> int:
    """Words for Latin scripts; each CJK character counts as one."""
    return len(CJK.findall(text)) + len(CJK.sub(" ", text).split())


def split_words(text: str) -> list[Word]:
    """The words of `text`, each with whether a space preceded it."""
    words = []
    for chunk in text.split():
        for k, token in enumerate(_TOKEN.findall(chunk)):
            words.append(Word(token, k == 0 and bool(words)))
    return words


def join_words(words: Iterable[tuple[str, bool]]) -> str:
    """The text the words came from: a space only where the script had one."""
    out = ""
    for text, spaced in words:
        out += (" " if out and spaced else "") + text
    return out


def _ends_sentence(line: str, end: int, before: str) -> bool:
    """Whether Latin end punctuation that stops at `end` closes a sentence."""
    rest = line[end:].lstrip()
    if rest[:1].islower():
        return False  # "e.g. the", "and then... nothing": the sentence goes on
    if before.endswith(("…", "..")):
        return rest[:1].isupper()  # "wait... 3.5" goes on; "Wait... Then" ends
    if not before.endswith("."):
        return True  # ! and ? end a sentence before anything but a lower-case word
    word = before.split()[-1] if before.split() else ""
    word = word.lstrip("\"'“‘([")
    if _ACRONYM.match(word):
        return False
    if word[:-1].lower() in ("no", "nos"):
        return not rest[:1].isdigit()  # "No. 5", but "The answer is no. We left."
    return word[:-1].lower() not in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """The script's sentences, in its own words; a line break always ends one."""
    sentences = []
    for line in unicodedata.normalize("NFC", text).splitlines():
        start = 0
        ends = sorted(
            [(m.end(), m.group()) for m in _LATIN_END.finditer(line)]
            + [(m.end(), "") for m in _CJK_END.finditer(line)]
        )
        for end, mark in ends:
            if end <= start:
                continue
            if mark and not _ends_sentence(line, end, line[start:end].rstrip("\"'”’)]")):
                continue
            sentences.append(line[start:end])
            start = end
        sentences.append(line[start:])
    # A fragment with nothing to speak (a stray quote, "...") is dropped, not read aloud.
    return [" ".join(s.split()) for s in sentences if any(ch.isalnum() for ch in s)]


def split_with_breaks(text: str) -> tuple[list[str], list[str]]:
    """The script's sentences (as `split_sentences` gives them) and what follows each in the
    script: "sentence", "line" (a line break) or "paragraph" (a blank line, or the end)."""
    sentences: list[str] = []
    breaks: list[str] = []
    for line in unicodedata.normalize("NFC", text).splitlines():
        if not line.strip():
            if breaks:
                breaks[-1] = "paragraph"
            continue
        found = split_sentences(line)
        sentences += found
        breaks += ["sentence"] * len(found)
        if found:
            breaks[-1] = "line"
    if breaks:
        breaks[-1] = "paragraph"
    return sentences, breaks
