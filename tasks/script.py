"""Script stage: the narration text, split into the sentences the voice will read."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from pydantic import BaseModel

from blocks.llm import configured_llm
from blocks.settings import get_settings
from tasks.errors import BadInput
from tasks.stage import stage

# A sentence runs to Latin end punctuation followed by a space or the end of the line (so
# "3.5" stays whole), or to CJK end punctuation, which needs no space; closing quotes stay.
_SENTENCE = re.compile(r""".+?(?:[.!?…]+["'”’)\]]*(?=\s|$)|[。！？；]+["'”’」』）]*|$)""")
PARAGRAPHS = 3  # of an LLM-written script: about 30 to 45 s of narration
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


class Script(BaseModel):
    title: str
    language: str
    sentences: list[str]
    source: str  # "user" or the LLM provider's name

    @property
    def text(self) -> str:
        joiner = "" if is_cjk(self.language) else " "
        return joiner.join(self.sentences)


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
    if sum(1 for ch in letters if _CJK.match(ch)) > len(letters) * 0.3:
        return "zh"
    return "en"


def split_sentences(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text)
    parts = (m.group().strip() for line in text.splitlines() for m in _SENTENCE.finditer(line))
    # A fragment with nothing to speak (a stray quote, "...") is dropped, not read aloud.
    return [re.sub(r"\s+", " ", p) for p in parts if p and any(ch.isalnum() for ch in p)]


def count_words(text: str) -> int:
    """Words for Latin scripts; each CJK character counts as one."""
    cjk = len(_CJK.findall(text))
    return cjk + len(_CJK.sub(" ", text).split())


def make_script(
    topic: str, script: str | None, language: str = "auto", audio: Path | None = None
) -> Script:
    """The user's script split into sentences, the transcript of their narration file, or
    one written by the configured LLM."""
    source = "user"
    if not script and audio is not None:
        from tasks.alignment import transcript

        script, source = transcript(audio), "transcript"
        if not any(ch.isalnum() for ch in script):
            raise BadInput(f"no speech recognized in {audio.name}")
    if not script:
        llm = configured_llm()
        if llm is None:
            raise BadInput("no script given and no LLM provider configured")
        script = llm.write_script(topic, language if language != "auto" else "en", PARAGRAPHS)
        source = llm.name
    limit = get_settings().max_script_words
    words = count_words(script)
    if words > limit:
        raise BadInput(
            f"script has {words} words; the limit is {limit} (set MPT_MAX_SCRIPT_WORDS to change)"
        )
    sentences = split_sentences(script)
    if not sentences:
        raise BadInput("script has no words to speak (only punctuation or symbols)")
    lang = detect_language(script) if language == "auto" else language
    title = topic or sentences[0][:80]
    return Script(title=title, language=lang, sentences=sentences, source=source)


@stage("script")
def script_stage(
    topic: str, script: str | None, language: str, llm: list[str], audio: Path | None = None
) -> Script:
    # `llm` names the configured providers and models (no secrets): a new chain, a new key.
    return make_script(topic, script, language, audio)
