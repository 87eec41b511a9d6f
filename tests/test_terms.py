from tasks.script import make_script
from tasks.terms import MAX_TERMS, MIN_TERMS, extract_terms

from .conftest import SAMPLE_SCRIPT


def _check(terms: list[str]) -> None:
    assert MIN_TERMS <= len(terms) <= MAX_TERMS
    assert len({t.lower() for t in terms}) == len(terms)


def test_terms_come_from_the_script():
    terms = extract_terms(make_script("", SAMPLE_SCRIPT))
    _check(terms)
    assert any("coffee" in t or "drinks" in t or "beans" in t for t in terms)


def test_short_script_still_gives_three_terms():
    _check(extract_terms(make_script("", "Hello world.")))


def test_cjk_script_gives_cjk_terms():
    terms = extract_terms(make_script("", "咖啡是世界上最受欢迎的饮料之一。咖啡生长在赤道附近。"))
    _check(terms)
    assert "咖啡" in terms


def test_terms_are_deduplicated_case_insensitively():
    terms = extract_terms(make_script("", "Coffee coffee COFFEE. Coffee beans. Coffee beans!"))
    _check(terms)
    assert terms.count("coffee") <= 1
