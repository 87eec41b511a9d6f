import json
import shutil
import wave
from itertools import pairwise

import pytest

from blocks.errors import BadInput
from tasks.narration import available_voices, get_voice, synthesize
from tasks.script import make_script
from tasks.text import split_words

from .conftest import SAMPLE_SCRIPT


def _wav_seconds(path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_piper_sentences_are_measured_in_order(tmp_path):
    script = make_script("", SAMPLE_SCRIPT)
    n = synthesize(script, "piper:en_US-joe-medium", 1.0, 0.3, tmp_path)
    assert [s.text for s in n.sentences] == script.sentences
    assert n.duration_s == pytest.approx(_wav_seconds(n.audio), abs=0.01)
    prev_end = 0.0
    for s in n.sentences:
        assert prev_end <= s.start_s < s.end_s <= n.duration_s
        # Words tile the sentence's measured span in order.
        assert s.words[0].start_s == pytest.approx(s.start_s, abs=0.002)
        assert s.words[-1].end_s == pytest.approx(s.end_s, abs=0.002)
        assert all(a.end_s <= b.start_s + 1e-3 for a, b in pairwise(s.words))
        prev_end = s.end_s
    # The pause between sentences is in the audio, so the gaps are real.
    assert n.sentences[1].start_s - n.sentences[0].end_s >= 0.25
    saved = json.loads(n.timings.read_text())
    assert saved["sentences"][0]["text"] == script.sentences[0]


def test_speech_rate_changes_duration(tmp_path):
    script = make_script("", "The quick brown fox jumps over the lazy dog.")
    slow = synthesize(script, "piper:en_US-joe-medium", 0.7, 0.0, tmp_path / "a")
    fast = synthesize(script, "piper:en_US-joe-medium", 1.5, 0.0, tmp_path / "b")
    assert slow.duration_s > fast.duration_s * 1.5


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
def test_espeak_engine(tmp_path):
    assert "espeak:en-us" in [v.id for v in available_voices()]
    n = synthesize(make_script("", "Hello there. How are you?"), "espeak:en-us", 1.0, 0.2, tmp_path)
    assert len(n.sentences) == 2
    assert n.duration_s == pytest.approx(_wav_seconds(n.audio), abs=0.01)


def test_unknown_voice_is_bad_input():
    with pytest.raises(BadInput, match="valid voices: piper:en_US-joe-medium"):
        get_voice("piper:nobody")


def test_cjk_words_are_characters():
    words = split_words("咖啡很好喝。 Hello, world!")
    assert [w.text for w in words] == ["咖", "啡", "很", "好", "喝。", "Hello,", "world!"]
    assert [w.spaced for w in words] == [False, False, False, False, False, True, True]


def test_non_ascii_and_cjk_scripts_are_spoken(tmp_path):
    script = make_script("", "Crème brûlée, naïve café. 咖啡很好喝。")
    n = synthesize(script, "piper:en_US-joe-medium", 1.0, 0.2, tmp_path)
    assert len(n.sentences) == 2
    assert n.duration_s > 1.0


def test_the_same_seed_gives_the_same_narration(tmp_path):
    """A rerun after a cache loss matches the first video: Piper's noise is seeded."""
    script = make_script("", "Coffee grows near the equator. Roasting brings out its flavour.")
    voice = "piper:en_US-joe-medium"
    first = synthesize(script, voice, 1.0, 0.3, tmp_path / "a", seed=7)
    again = synthesize(script, voice, 1.0, 0.3, tmp_path / "b", seed=7)
    other = synthesize(script, voice, 1.0, 0.3, tmp_path / "c", seed=8)
    assert first.audio.read_bytes() == again.audio.read_bytes()  # identical, sample for sample
    assert first.sentences == again.sentences and first.duration_s == again.duration_s
    assert first.audio.read_bytes() != other.audio.read_bytes()  # the seed is what decides


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_espeak_is_deterministic_without_a_seed(tmp_path):
    script = make_script("", "Hello there. How are you?")
    a = synthesize(script, "espeak:en-us", 1.0, 0.2, tmp_path / "a", seed=1)
    b = synthesize(script, "espeak:en-us", 1.0, 0.2, tmp_path / "b", seed=2)
    assert a.audio.read_bytes() == b.audio.read_bytes()
