"""Terms stage: search queries for footage, scene by scene.

With an LLM, one request for the whole storyboard gives 1 to 3 English queries per scene;
offline (or when the reply is prose or counts the scenes wrong) each scene's own keywords
are its queries: YAKE for languages written with spaces, and words from a segmenter for
Chinese (jieba, through rjieba) and Japanese (Sudachi), whose text has none.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from blocks.llm import configured_llm
from tasks.script import Script
from tasks.stage import stage
from tasks.text import is_cjk

log = logging.getLogger(__name__)
MIN_TERMS, MAX_TERMS = 3, 8
# Used only when a script is too short to yield three distinct terms of its own.
_FILLERS = ["abstract background", "light", "motion", "nature", "city", "texture"]


def _dedupe(terms: list[str]) -> list[str]:
    """Case-insensitive, and a term inside a term already kept adds nothing."""
    kept: list[str] = []
    for term in terms:
        norm = re.sub(r"\s+", " ", term.strip().lower())
        if not norm or any(norm == k or f" {norm} " in f" {k} " for k in kept):
            continue
        kept.append(norm)
    return kept


@lru_cache(maxsize=1)
def _sudachi() -> Any:
    from sudachipy import Dictionary

    return Dictionary(dict="small").tokenizer()


def segment_nouns(text: str, language: str) -> list[str]:
    """The nouns of Chinese or Japanese text as a word segmenter splits it, most frequent
    first (ties in order of appearance); Korean, written with spaces, by its words."""
    lang = language.split("-")[0]
    if lang == "zh":
        import rjieba

        words = [w for w, tag in rjieba.tag(text) if tag.startswith(("n", "vn")) and len(w) > 1]
    elif lang == "ja":
        words = [
            m.surface()
            for m in _sudachi().tokenize(text)
            if m.part_of_speech()[0] == "名詞"
            and m.part_of_speech()[1] in ("普通名詞", "固有名詞")
            and len(m.surface()) > 1
        ]
    else:
        words = [w.strip(".,!?;:\"'()") for w in text.split()]
        words = [w for w in words if len(w) > 1]
    counts = Counter(words)
    return sorted(dict.fromkeys(words), key=lambda w: -counts[w])


def _cjk_terms(text: str, language: str, count: int) -> list[str]:
    return segment_nouns(text, language)[:count]


def extract_terms(script: Script, count: int = 6) -> list[str]:
    """Keywords by YAKE (statistical, offline), with fillers if the script is too short."""
    terms = keywords(script.text, script.language, count)
    if len(terms) < MIN_TERMS:
        terms = _dedupe(terms + _FILLERS)[:MIN_TERMS]
    return terms[:MAX_TERMS]


def keywords(text: str, language: str, count: int) -> list[str]:
    """Up to `count` keywords of `text`, offline (may be fewer for a very short text)."""
    import yake

    if is_cjk(language):
        found = _cjk_terms(text, language, count * 2)
    else:
        lang = language.split("-")[0]
        extractor = yake.KeywordExtractor(lan=lang, n=2, dedupLim=0.7, top=count * 3)
        found = [kw for kw, _score in extractor.extract_keywords(text)]
        # Fall back to plain words when YAKE finds too few (very short texts).
        words = [w for w in re.findall(r"[^\W\d_]{4,}", text)]
        found += [w for w, _ in Counter(w.lower() for w in words).most_common(count)]
    return _dedupe(found)[:count]


class Terms(BaseModel):
    terms: list[str]  # for the whole video (the manifest's `terms`)
    scenes: list[list[str]] = []  # 1 to 3 queries per scene, in order
    source: str  # the LLM provider's name, or "keywords" (offline extraction)
    warnings: list[str] = []


def make_terms(script: Script, count: int = 6) -> Terms:
    """Terms from the configured LLM; offline extraction when none is configured, none
    answers or it answers in prose (terms only steer footage choice, so a failed LLM is
    not worth failing the run)."""
    llm = configured_llm()
    warnings: list[str] = []
    if script.prose:
        warnings.append("search terms come from keyword extraction (the script was prose)")
    elif llm is not None:
        try:
            terms = _dedupe(llm.search_terms(script.text, count))
        except (StageError, BadInput) as exc:
            log.warning("terms from keywords instead: %s", exc)
        else:
            if len(terms) >= MIN_TERMS:
                log.info("search terms from %s: %s", llm.name, ", ".join(terms[:MAX_TERMS]))
                return Terms(terms=terms[:MAX_TERMS], source=llm.name)
            if llm.warnings:
                warnings += [
                    f"{w}: search terms come from keyword extraction" for w in llm.warnings
                ]
    terms = extract_terms(script, count)
    log.info("search terms by keyword extraction: %s", ", ".join(terms))
    return Terms(terms=terms, source="keywords", warnings=warnings)


def scene_texts(script: Script, groups: list[list[int]]) -> list[str]:
    joiner = "" if is_cjk(script.language) else " "
    return [joiner.join(script.sentences[i] for i in group) for group in groups]


def make_scene_terms(
    script: Script, groups: list[list[int]], given: list[list[str]] | None = None
) -> Terms:
    """Queries per scene: the request's own where it gave them, else from one LLM request
    for the whole storyboard, else each scene's keywords (its neighbours' or the video's
    when a scene is too short to have any)."""
    texts = scene_texts(script, groups)
    given = (given or []) + [[] for _ in range(len(groups) - len(given or []))]
    warnings = []
    if script.prose:
        warnings.append("search terms come from keyword extraction (the script was prose)")
    per_scene: list[list[str]] | None = None
    source = "keywords"
    llm = configured_llm() if not script.prose else None
    if llm is not None and not all(given):
        try:
            per_scene = llm.scene_terms(texts)
        except (StageError, BadInput) as exc:
            log.warning("scene terms from keywords instead: %s", exc)
        warnings += [f"{w}: scene terms come from keyword extraction" for w in llm.warnings]
        if per_scene is not None:
            source = llm.name
    if per_scene is None or any(not t for t in per_scene):
        found = [keywords(text, script.language, 3) for text in texts]
        per_scene = [p or f for p, f in zip(per_scene or found, found, strict=True)]
    for i, terms in enumerate(per_scene):
        if not terms:  # "Yes." has no keyword: its neighbours' words, or the video's
            near = [per_scene[j] for j in (i - 1, i + 1) if 0 <= j < len(per_scene)]
            per_scene[i] = next((n for n in near if n), extract_terms(script)[:2])
    scenes = [g if g else list(p) for g, p in zip(given, per_scene, strict=True)]
    log.info("scene terms from %s: %s", source, " | ".join(", ".join(t) for t in scenes))
    flat = _dedupe([t for terms in scenes for t in terms])[:MAX_TERMS]
    return Terms(terms=flat, scenes=scenes, source=source, warnings=warnings)


@stage("terms")
def terms_stage(
    script: Script,
    llm: list[str],
    groups: list[list[int]] | None = None,
    given: list[list[str]] | None = None,
) -> Terms:
    if groups is None:
        return make_terms(script)
    return make_scene_terms(script, groups, given)


@stage("social")
def social_stage(script: Script, llm: list[str]) -> dict[str, object] | None:
    """Title, description and hashtags to post with the video, when an LLM is configured.

    A social text is a nicety: if no provider answers, the run goes on without one.
    """
    chain = configured_llm()
    if chain is None:
        return None
    try:
        social = chain.social(script.text, script.language)
    except (StageError, BadInput) as exc:
        log.warning("no social metadata: %s", exc)
        return None
    if social is None:
        log.warning("no social metadata: %s", "; ".join(chain.warnings))
        return None
    log.info("social text from %s: %s", chain.name, social.title)
    return social.model_dump()
