"""A narration file the user brings: timed by offline recognition (the bundled tiny.en)."""

import re

import pytest

from flows.video import video_flow
from spec import VideoSpec
from tasks.alignment import align, narration_from_audio, transcribe
from tasks.narration import synthesize
from tasks.script import make_script

from .conftest import ffmpeg, media

TEXT = (
    "Coffee grows on small trees near the equator. "
    "Roasting turns the green seeds brown and fragrant."
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 'recorded' narration: Piper's voice, re-encoded as a user's AAC file, with the
    sentence times Piper measured as ground truth."""
    d = tmp_path_factory.mktemp("rec")
    reference = synthesize(make_script("", TEXT), "piper:en_US-joe-medium", 1.0, 0.6, d)
    m4a = d / "my narration.m4a"
    ffmpeg("-i", str(reference.audio), "-c:a", "aac", "-b:a", "96k", str(m4a))
    return m4a, reference


def test_recognition_times_each_sentence_close_to_the_truth(recording, tmp_path):
    m4a, reference = recording
    n = narration_from_audio(reference_sentences(reference), m4a, tmp_path)
    assert n.voice == "user-audio"
    assert abs(n.duration_s - reference.duration_s) < 0.1
    for got, truth in zip(n.sentences, reference.sentences, strict=True):
        assert abs(got.start_s - truth.start_s) < 0.4, (got, truth)
        assert abs(got.end_s - truth.end_s) < 0.4, (got, truth)
    assert n.sentences[0].words[0].text == "Coffee"


def reference_sentences(reference):
    return [s.text for s in reference.sentences]


def test_words_the_recognizer_missed_are_placed_between_neighbours():
    heard = [("Coffee", 0.0, 0.4), ("grows", 0.5, 0.9), ("equator", 2.0, 2.6)]
    timed = align(["Coffee grows near the equator."], heard, 3.0)
    words = timed[0].words
    assert [w.text for w in words] == ["Coffee", "grows", "near", "the", "equator."]
    assert words[1].end_s <= words[2].start_s < words[3].start_s < words[4].start_s == 2.0


def test_flow_with_audio_and_no_script_uses_the_transcript(recording, tmp_path):
    m4a, reference = recording
    spoken = set(re.findall(r"[a-z]+", TEXT.lower()))
    heard = set(re.findall(r"[a-z]+", " ".join(w for w, _, _ in transcribe(m4a)).lower()))
    # Piper's voice varies a little run to run, and tiny.en mishears a word now and then.
    assert len(spoken & heard) >= len(spoken) * 0.7, heard
    spec = VideoSpec(audio=m4a, resolution="540p", seed=4)
    result = video_flow(spec, out_dir=str(tmp_path / "o"))
    assert result.script_source == "transcript" and result.voice == "user-audio"
    assert len(spoken & set(re.findall(r"[a-z]+", result.script.lower()))) >= len(spoken) * 0.7
    assert abs(media(tmp_path / "o" / "video.mp4")["duration"] - reference.duration_s) < 0.3


def test_unreadable_audio_is_bad_input(tmp_path):
    from blocks.errors import BadInput

    bad = tmp_path / "voice.mp3"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(BadInput, match="not readable audio"):
        narration_from_audio(["Hi."], bad, tmp_path)
