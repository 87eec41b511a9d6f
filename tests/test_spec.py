import pytest
from pydantic import ValidationError

from blocks.errors import BadInput
from flows.preflight import preflight
from spec import Aspect, Resolution, VideoSpec, first_error


def _error(**fields) -> str:
    with pytest.raises(ValidationError) as info:
        VideoSpec(**fields)
    return first_error(info.value)


def _machine_error(**fields) -> str:
    """What preflight (the checks that need this machine) says of a well-formed spec."""
    with pytest.raises(BadInput) as info:
        preflight(VideoSpec(**fields))
    return str(info.value)


def test_sizes_follow_aspect_and_resolution():
    assert VideoSpec(topic="x").size == (1080, 1920)
    assert VideoSpec(topic="x", aspect=Aspect.landscape).size == (1920, 1080)
    assert VideoSpec(topic="x", aspect=Aspect.square).size == (1080, 1080)
    assert VideoSpec(topic="x", resolution=Resolution.p540).size == (540, 960)


def test_empty_topic_and_script():
    assert _error(topic="  ", script="  ") == "give a topic or a script: both are empty"


def test_script_of_only_punctuation():
    assert "no words to speak" in _error(script="?!... ---")


def test_unknown_voice_lists_the_valid_ones():
    msg = _machine_error(script="hi", voice="nobody")
    assert msg.startswith("voice: unknown voice 'nobody'; valid voices: ")
    assert "piper:en_US-joe-medium" in msg
    assert "\n" not in msg


def test_missing_music_file(tmp_path):
    assert _machine_error(script="hi", music=str(tmp_path / "nope.mp3")).startswith(
        "music: music file not found"
    )


def test_unsupported_aspect():
    assert "'9:16', '16:9' or '1:1'" in _error(script="hi", aspect="4:3")


def test_missing_materials_folder(tmp_path):
    msg = _machine_error(script="hi", materials_dir=tmp_path / "x")
    assert "materials folder does not exist" in msg


def test_seed_is_stable_and_derived_from_text():
    a = VideoSpec(script="Hello there.").effective_seed()
    assert a == VideoSpec(script="Hello there.").effective_seed()
    assert a != VideoSpec(script="Something else.").effective_seed()
    assert VideoSpec(script="x", seed=7).effective_seed() == 7


def test_schema_has_titles_for_the_prefect_form():
    schema = VideoSpec.model_json_schema()
    assert schema["properties"]["clip_duration"]["title"] == "Longest cut (s)"
    assert schema["properties"]["clip_duration"]["maximum"] == 30.0


def test_the_spec_checks_shape_only_and_preflight_makes_paths_absolute(tmp_path, monkeypatch):
    # Well-formed but naming nothing on this machine: the model accepts it (a worker
    # re-validating parameters touches no file); preflight is where the machine is asked.
    VideoSpec(script="hi", voice="nobody:x", music=str(tmp_path / "nope.mp3"))
    song = tmp_path / "song.mp3"
    song.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    checked = preflight(VideoSpec(script="hi", music="song.mp3", materials_dir="."))
    assert checked.music == str(song) and checked.materials_dir == tmp_path


def test_review_needs_the_service():
    assert _machine_error(script="hi", review=True).startswith("review: needs the service")
    preflight(VideoSpec(script="hi", review=True), service=True)
