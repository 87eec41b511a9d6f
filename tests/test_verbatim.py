"""Subtitles show the script's own words: a property over many generated scripts.

A sentence such as "About 3.5 thousand of them share the island with day-trippers." was
once shown as "About 3. 5 thousand … day- trippers": words were split at punctuation and
joined back with spaces. Here scripts are generated from the kinds of words that broke
(decimals, thousands, times, percentages, hyphens, apostrophes, abbreviations, URLs,
e-mail addresses, ellipses, quotes, dashes, CJK mixed with Latin) and each must come back
verbatim: from sentence splitting, from the words, and from the subtitle cues and SRT.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spec.subtitles import SubtitleStyle
from tasks.subtitles import build_cues, line_text, render_srt, resolve_font
from tasks.text import join_words, split_sentences, split_words
from tasks.timings import Narration, SentenceTiming, word_timings

TRICKY = [
    "3.5",
    "1,000",
    "12,345.67",
    "10:30",
    "50%",
    "-4.2°C",
    "day-trippers",
    "well-known",
    "it's",
    "rock 'n' roll",
    "Dr.",
    "Mr.",
    "e.g.",
    "i.e.",
    "U.S.",
    "vs.",
    "https://example.com/a-b_c?d=1.5",
    "www.example.org",
    "ann.lee@example.com",
    "wait... then",  # an ellipsis before an upper-case word is ambiguous, so not here
    "so… 3.5",
    '"quoted"',
    "“curly”",
    "(aside)",
    "—",
    "–",
    "café",
    "naïve",
    "咖啡",
    "Python编程",
    "2024年",
    "「你好」",
    "J.",
]
PLAIN = ["coffee", "grows", "near", "the", "equator", "and", "then", "we", "roast", "it"]
word = st.sampled_from(TRICKY + PLAIN)
end = st.sampled_from([".", "!", "?", "。", "?\u201d", '!"'])


@st.composite
def sentences(draw: st.DrawFn) -> str:
    words = draw(st.lists(word, min_size=1, max_size=14))
    first = draw(st.sampled_from(["Coffee", "The", "About", "We", "Dr. Lee", "In 2024,", "咖啡"]))
    # The last word is plain: "Dr.." or "e.g.." at a sentence's end means nothing.
    last = draw(st.sampled_from(PLAIN))
    return " ".join([first, *words, last]) + draw(end)


scripts = st.lists(sentences(), min_size=1, max_size=4)


def _narration(texts: list[str]) -> Narration:
    timed, t = [], 0.0
    for text in texts:
        timed.append(
            SentenceTiming(text=text, start_s=t, end_s=t + 3, words=word_timings(text, t, t + 3))
        )
        t += 3.3
    return Narration(
        audio="a.wav", timings="t.json", voice="v", duration_s=t, sample_rate=22050, sentences=timed
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts)
def test_sentences_split_only_at_their_ends(texts):
    # Not after an abbreviation (Dr., U.S., e.g.), an initial or inside a number.
    assert split_sentences(" ".join(texts)) == texts


@settings(max_examples=300, deadline=None)
@given(sentences())
def test_words_join_back_to_the_sentence(text):
    words = split_words(text)
    assert join_words(words) == text
    timed = word_timings(text, 1.0, 4.0)
    assert [w.text for w in timed] == [w.text for w in words]  # a time for every word
    assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(timed, timed[1:], strict=False))


STYLE = SubtitleStyle(size=96, max_lines=2)
FONT = resolve_font(STYLE.font, "咖啡 coffee")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scripts, st.sampled_from([(1080, 1920), (540, 960), (1920, 1080)]))
def test_subtitles_show_the_script_verbatim(texts, size):
    narration = _narration(texts)
    cues = build_cues(narration, STYLE, FONT, size)
    for sentence in narration.sentences:
        mine = [c for c in cues if sentence.start_s <= c.start_s < sentence.end_s]
        shown = [w for cue in mine for line in cue.lines for w in line]
        # Broken only at line ends: the words of the cues, joined, are the sentence itself.
        assert join_words((w.text, w.spaced) for w in shown) == sentence.text
    srt = render_srt(cues)
    lines = [line for cue in cues for line in cue.lines]
    # Each block: its number, its times, then its text lines.
    text_lines = [t for block in srt.split("\n\n") for t in block.strip("\n").split("\n")[2:]]
    assert text_lines == [line_text(line) for line in lines]


def test_the_reported_sentence_is_shown_as_written():
    text = "About 3.5 thousand of them share the island with day-trippers."
    cues = build_cues(_narration([text]), STYLE, FONT, (1080, 1920))
    shown = " ".join(line_text(line) for cue in cues for line in cue.lines)
    assert shown == text
    assert "3. 5" not in render_srt(cues) and "day- trippers" not in render_srt(cues)
