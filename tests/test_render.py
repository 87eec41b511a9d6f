import numpy as np
import pytest

from spec.options import Concat
from spec.subtitles import SubtitleStyle
from tasks.narration import synthesize
from tasks.render import RenderOptions, render_video
from tasks.script import make_script
from tasks.storyboard import pick_materials
from tasks.subtitles import make_subtitles, resolve_font

from .conftest import frame_at, make_image, make_video, media

SIZE = (540, 960)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("render")
    clips = d / "clips"
    make_video(clips / "landscape.mp4", size="960x540", seconds=3)
    make_video(clips / "portrait.mp4", size="360x640", seconds=3, source="smptebars", audio=True)
    make_image(clips / "still.png")
    script = make_script("", "Coffee grows near the equator. Roasting brings out the flavour.")
    narration = synthesize(script, "piper:en_US-joe-medium", 1.0, 0.3, d)
    style = SubtitleStyle(size=80)
    font = resolve_font(style.font, script.text)
    subtitles = make_subtitles(narration, style, font, SIZE, d)
    materials = pick_materials(
        ["coffee"], narration.duration_s, SIZE, clips, 2.0, Concat.sequential, 1, 1
    )
    return d, narration, subtitles, materials


def test_render_streams_size_and_duration(parts, tmp_path):
    _, narration, subtitles, materials = parts
    music = tmp_path / "music.m4a"
    from .conftest import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "sine=f=220:d=2", "-c:a", "aac", str(music))
    out = render_video(
        materials,
        0,
        narration,
        subtitles,
        music,
        RenderOptions(size=SIZE),
        seed=1,
        out=tmp_path / "v.mp4",
    )
    info = media(out.video)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert (info["width"], info["height"]) == SIZE
    assert abs(info["duration"] - narration.duration_s) < 0.3
    # faststart: the index (moov) comes before the media data (mdat).
    head = out.video.read_bytes()[:200_000]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    assert not list(tmp_path.glob(".*part*"))  # no temporary file left behind


def test_subtitles_are_burned_in(parts, tmp_path):
    _, narration, subtitles, materials = parts
    opts = RenderOptions(size=SIZE)
    with_subs = render_video(materials, 0, narration, subtitles, None, opts, 1, tmp_path / "a.mp4")
    without = render_video(materials, 0, narration, None, None, opts, 1, tmp_path / "b.mp4")
    cue = subtitles.cues[0]
    t = (cue.start_s + cue.end_s) / 2
    a = frame_at(with_subs.video, t).astype(int)
    b = frame_at(without.video, t).astype(int)
    h = a.shape[0]
    bottom = np.abs(a[int(h * 0.7) :] - b[int(h * 0.7) :]).mean()
    top = np.abs(a[: int(h * 0.4)] - b[: int(h * 0.4)]).mean()
    assert bottom > 5 * max(top, 0.5), (bottom, top)
