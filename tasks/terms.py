"""Terms stage: 3 to 8 search queries for footage, extracted offline from the script."""

from __future__ import annotations

import logging
import re
from collections import Counter

from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from blocks.llm import configured_llm
from tasks.script import Script
from tasks.stage import stage
from tasks.text import CJK, is_cjk

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


def _cjk_terms(text: str, count: int) -> list[str]:
    """Most frequent two-character runs: a rough word list for text without spaces."""
    grams: Counter[str] = Counter()
    for run in re.findall(f"{CJK.pattern}+", text):
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return [g for g, _ in grams.most_common(count)]


def extract_terms(script: Script, count: int = 6) -> list[str]:
    """Keywords by YAKE (statistical, offline), with fillers if the script is too short."""
    import yake

    text = script.text
    if is_cjk(script.language):
        found = _cjk_terms(text, count * 2)
    else:
        lang = script.language.split("-")[0]
        extractor = yake.KeywordExtractor(lan=lang, n=2, dedupLim=0.7, top=count * 3)
        found = [kw for kw, _score in extractor.extract_keywords(text)]
        # Fall back to plain words when YAKE finds too few (very short scripts).
        words = [w for w in re.findall(r"[^\W\d_]{4,}", text)]
        found += [w for w, _ in Counter(w.lower() for w in words).most_common(count)]
    terms = _dedupe(found)[:count]
    if len(terms) < MIN_TERMS:
        terms = _dedupe(terms + _FILLERS)[:MIN_TERMS]
    return terms[:MAX_TERMS]


class Terms(BaseModel):
    terms: list[str]
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


@stage("terms")
def terms_stage(script: Script, llm: list[str]) -> Terms:
    return make_terms(script)


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
