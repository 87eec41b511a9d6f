import time

import pytest

from blocks.errors import BadInput
from tasks.script import make_script
from tasks.text import count_words, detect_language, split_sentences


def test_splits_latin_sentences_keeping_quotes_and_decimals():
    text = 'Pi is 3.14 today. Is it? "Yes!" she said.\nNew line here'
    assert split_sentences(text) == [
        "Pi is 3.14 today.",
        "Is it?",
        '"Yes!" she said.',  # a lower-case word goes on with the sentence
        "New line here",
    ]


def test_splits_cjk_punctuation_without_spaces():
    assert split_sentences("咖啡很好喝。我喜欢咖啡！真的吗？好") == [
        "咖啡很好喝。",
        "我喜欢咖啡！",
        "真的吗？",
        "好",
    ]


def test_drops_fragments_with_nothing_to_speak():
    assert split_sentences("Hello. ... !!! World.") == ["Hello.", "World."]


def test_detects_language_by_script():
    assert detect_language("咖啡是世界上最受欢迎的饮料") == "zh"
    assert detect_language("コーヒーが好きです") == "ja"
    assert detect_language("Café au lait, s'il vous plaît") == "en"


def test_counts_cjk_characters_as_words():
    assert count_words("咖啡 hello world") == 4


def test_user_script_becomes_sentences():
    script = make_script("Coffee", "One. Two! Three?")
    assert script.sentences == ["One.", "Two!", "Three?"]
    assert script.source == "user"
    assert script.title == "Coffee"


def test_no_script_and_no_llm_is_bad_input():
    with pytest.raises(BadInput, match="no script given and no LLM provider configured"):
        make_script("coffee", None)


def test_punctuation_only_script_is_bad_input():
    with pytest.raises(BadInput, match="no words to speak"):
        make_script("", "... !!! ???")


def test_five_thousand_words_are_refused_quickly_with_the_limit_stated():
    text = "word " * 5000
    start = time.perf_counter()
    with pytest.raises(BadInput, match=r"5000 words; the limit is 2000"):
        make_script("", text)
    assert time.perf_counter() - start < 2
