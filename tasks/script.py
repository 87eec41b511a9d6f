"""Script stage: the narration text, split into the sentences the voice will read."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel

from blocks.errors import BadInput
from blocks.llm import configured_llm
from blocks.settings import get_settings
from tasks.markup import Pause, parse_pauses, place_pauses
from tasks.stage import stage
from tasks.text import count_words, detect_language, is_cjk, split_with_breaks

log = logging.getLogger(__name__)

PARAGRAPHS = 3  # of an LLM-written script: about 30 to 45 s of narration


class Script(BaseModel):
    title: str
    language: str
    sentences: list[str]
    # What follows each sentence in the script: "sentence", "line", "paragraph", or "scene"
    # (the end of a scene the request gave); scenes are cut at these.
    breaks: list[str] = []
    pauses: list[Pause] = []  # silences the script asked for ([pause: 1.5s])
    source: str  # "user" or the LLM provider's name
    # The LLM answered in prose and its reply is the script: search terms then come from
    # keyword extraction rather than from another request it would answer the same way.
    prose: bool = False
    warnings: list[str] = []

    @property
    def text(self) -> str:
        joiner = "" if is_cjk(self.language) else " "
        return joiner.join(self.sentences)


def _parts(texts: list[str]) -> tuple[list[str], list[str], list[Pause]]:
    """Sentences, their breaks and the pauses of texts that each end a scene (one text: a
    script, whose paragraphs and lines are its breaks)."""
    sentences: list[str] = []
    breaks: list[str] = []
    pauses: list[Pause] = []
    for text in texts:
        clean, marks = parse_pauses(text)
        found, after = split_with_breaks(clean)
        pauses += [
            p.model_copy(update={"sentence": p.sentence + len(sentences)})
            for p in place_pauses(marks, clean, found)
        ]
        sentences += found
        breaks += after
        if len(texts) > 1 and breaks:
            breaks[-1] = "scene"
    return sentences, breaks, pauses


def make_script(
    topic: str,
    script: str | None,
    language: str = "auto",
    audio: Path | None = None,
    scenes: list[str] | None = None,
) -> Script:
    """The user's script (or scenes) split into sentences, the transcript of their narration
    file, or one written by the configured LLM."""
    source, warnings = "user", []
    if scenes:
        script = "\n\n".join(scenes)
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
        source, warnings = llm.name, list(llm.warnings)
    limit = get_settings().max_script_words
    words = count_words(script)
    if words > limit:
        raise BadInput(
            f"script has {words} words; the limit is {limit} (set MPT_MAX_SCRIPT_WORDS to change)"
        )
    sentences, breaks, pauses = _parts(scenes or [script])
    if not sentences:
        raise BadInput("script has no words to speak (only punctuation or symbols)")
    if scenes and breaks.count("scene") != len(scenes):
        raise BadInput("each scene needs words to speak (one has only punctuation or symbols)")
    lang = detect_language(script) if language == "auto" else language
    title = topic or sentences[0][:80]
    log.info(
        "script from %s: %d sentences, %d words, language %s", source, len(sentences), words, lang
    )
    return Script(
        title=title,
        language=lang,
        sentences=sentences,
        breaks=breaks,
        pauses=pauses,
        source=source,
        prose=bool(warnings),
        warnings=warnings,
    )


@stage("script")
def script_stage(
    topic: str,
    script: str | None,
    language: str,
    llm: list[str],
    audio: Path | None = None,
    scenes: list[str] | None = None,
) -> Script:
    # `llm` names the configured providers and models (no secrets): a new chain, a new key.
    return make_script(topic, script, language, audio, scenes)
