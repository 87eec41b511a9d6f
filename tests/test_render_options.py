"""Each render option, checked on the output: streams, pixels and measured sound."""

import re
import subprocess

import numpy as np
import pytest

from spec.options import Background, Concat, Encoder, Fit, Position, Transition
from spec.subtitles import SubtitleStyle
from tasks.materials import Clip, Materials
from tasks.media import ffmpeg_encoders, ffmpeg_exe, probe, run_ffmpeg
from tasks.narration import synthesize
from tasks.render import RenderOptions, render_video
from tasks.script import make_script
from tasks.storyboard import pick_materials
from tasks.subtitles import make_subtitles, resolve_font

from .conftest import ffmpeg, frame_at, integrated_lufs, make_image, make_video, media

SIZE = (360, 640)
MUSIC_HZ = 13000  # above anything the 22 kHz voice contains, so the music can be measured


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    return tmp_path_factory.mktemp("opts")


@pytest.fixture(scope="module")
def narration(d):
    script = make_script("", "Coffee grows near the equator. Roasting brings out flavour.")
    return synthesize(script, "piper:en_US-joe-medium", 1.0, 1.5, d / "n1")


def colour_clip(path, colour: str, size="640x360", seconds=4.0) -> Clip:
    return clip_of(make_video(path, size, seconds, source=f"color=c={colour}"))


def clip_of(path) -> Clip:
    info = probe(path)
    return Clip(
        path=path,
        kind=info.kind,
        width=info.width,
        height=info.height,
        duration_s=info.duration_s,
        source="local",
    )


def render(d, name, narration, clips, subtitles=None, music=None, **opts):
    materials = Materials.sequence(clips, [list(range(len(clips)))])
    options = RenderOptions(size=SIZE, **({"clip_duration": 4.0, "loudness": None} | opts))
    return render_video(materials, 0, narration, subtitles, music, options, 1, d / f"{name}.mp4")


def sine(path, hz, seconds):
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=f={hz}:d={seconds}:sample_rate=48000",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        str(path),
    )
    return path


def band_rms(video, hz, start, end) -> float:
    """RMS of the output's audio near `hz`, between two times (dB)."""
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostats",
            "-hide_banner",
            "-ss",
            str(start),
            "-t",
            str(end - start),
            "-i",
            str(video),
            "-af",
            f"bandpass=f={hz}:width_type=h:w=400,astats=metadata=0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
    )
    return float(re.findall(r"RMS level dB: (-?[\d.inf]+)", out.stderr)[-1])


def test_cover_fills_the_frame_and_contain_shows_all_over_blur_or_colour(d, narration):
    src = make_video(d / "bars.mp4", "640x360", 4)
    clips = [clip_of(src)]
    cover = frame_at(render(d, "cover", narration, clips).video, 1.0).astype(int)
    color = frame_at(
        render(
            d,
            "contain_c",
            narration,
            clips,
            fit=Fit.contain,
            background=Background.color,
            background_color="#00FF00",
        ).video,
        1.0,
    ).astype(int)
    blur = frame_at(render(d, "contain_b", narration, clips, fit=Fit.contain).video, 1.0).astype(
        int
    )
    top = slice(0, 150)  # above a 16:9 picture fitted into 9:16 (it spans rows 218-421)
    assert np.abs(color[top] - [0, 255, 0]).mean() < 12  # solid green

    # Cover shows sharp picture up there; the blur fill has no hard edges.
    def edges(f, rows):
        return np.percentile(np.abs(np.diff(f[rows], axis=1)), 99.5)

    assert edges(cover, top) > 60
    assert edges(blur, top) < 40 < edges(blur, slice(230, 410))
    assert np.abs(blur[top] - [0, 255, 0]).mean() > 50  # not the colour fill
    # Contain keeps the whole width of the picture: the middle band matches the source.
    assert np.abs(color[320] - blur[320]).mean() < 12


def test_subtitles_at_top_or_bottom(d, narration):
    black = [colour_clip(d / "black.mp4", "black")]
    font = resolve_font("DejaVu Sans:bold", "x")

    def bright_rows(position):
        style = SubtitleStyle(position=position, size=90)
        subs = make_subtitles(narration, style, font, SIZE, d / f"s_{position}")
        video = render(d, f"sub_{position}", narration, black, subtitles=subs).video
        cue = subs.cues[0]
        f = frame_at(video, (cue.start_s + cue.end_s) / 2).mean(axis=2)
        rows = np.flatnonzero((f > 128).any(axis=1))
        cols = np.flatnonzero((f > 128).any(axis=0))
        return rows, cols

    rows, cols = bright_rows(Position.top)
    assert rows.size and rows.max() < SIZE[1] * 0.4
    assert cols.min() > 0 and cols.max() < SIZE[0] - 1  # inside the frame
    rows, _ = bright_rows(Position.bottom)
    assert rows.size and rows.min() > SIZE[1] * 0.6


def test_box_draws_behind_text(d, narration):
    black = [colour_clip(d / "black2.mp4", "black")]
    style = SubtitleStyle(box=True, box_color="#FF0000", box_opacity=1.0)
    subs = make_subtitles(narration, style, resolve_font(style.font, "x"), SIZE, d / "box")
    f = frame_at(render(d, "box", narration, black, subtitles=subs).video, 1.0).astype(int)
    red = (f[..., 0] > 180) & (f[..., 1] < 80) & (f[..., 2] < 80)
    assert red[int(SIZE[1] * 0.6) :].sum() > 500
    assert red[: int(SIZE[1] * 0.5)].sum() == 0


@pytest.mark.parametrize(
    "transition", [Transition.fade, Transition.slideleft, Transition.circleopen]
)
def test_transition_blends_two_cuts(d, narration, transition):
    clips = [colour_clip(d / "red.mp4", "red"), colour_clip(d / "blue.mp4", "blue")]
    hard = render(d, "hard", narration, clips, clip_duration=2.0)
    soft = render(
        d,
        f"soft_{transition}",
        narration,
        clips,
        clip_duration=2.0,
        transition=transition,
        transition_duration=1.0,
    )
    # Cut 1 is red for 2 s (+1 s overlap); mid-transition both colours are on screen.
    mid = frame_at(soft.video, 2.5).astype(int)
    assert (mid[..., 0] > 60).any() and (mid[..., 2] > 60).any()
    reddish_and_blueish = ((mid[..., 0] > 60) & (mid[..., 2] > 60)).mean()
    if transition == Transition.fade:
        assert reddish_and_blueish > 0.9  # every pixel is a mix
    hard_frame = frame_at(hard.video, 2.5).astype(int)
    assert not ((hard_frame[..., 0] > 60) & (hard_frame[..., 2] > 60)).any()
    assert abs(media(soft.video)["duration"] - narration.duration_s) < 0.3


def test_random_transition_picks_xfades_reproducibly(d, narration):
    from tasks.render import plan_cuts

    clips = [colour_clip(d / "red.mp4", "red"), colour_clip(d / "blue.mp4", "blue")]
    materials = Materials.sequence(clips, [[0, 1]])
    opts = RenderOptions(size=SIZE, clip_duration=1.0, transition=Transition.random)
    cuts = plan_cuts(materials, 0, 8.0, opts, 3)
    kinds = {c.transition for c in cuts[:-1]}
    assert Transition.random not in kinds and Transition.none not in kinds and len(kinds) > 1
    assert [c.transition for c in plan_cuts(materials, 0, 8.0, opts, 3)] == [
        c.transition for c in cuts
    ]
    # The cuts, minus their overlaps, cover the timeline exactly.
    total = sum(c.duration_s for c in cuts) - opts.transition_duration * (len(cuts) - 1)
    assert total == pytest.approx(8.0, abs=1e-6)


def test_clip_speed(d, narration):
    # A clip whose colour changes every second: red, lime, blue, white.
    src = d / "steps.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=320x180:d=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=lime:s=320x180:d=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=320x180:d=1",
        "-f",
        "lavfi",
        "-i",
        "color=c=white:s=320x180:d=1",
        "-filter_complex",
        "concat=n=4:v=1:a=0,fps=30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(src),
    )
    clips = [clip_of(src)]
    normal = frame_at(render(d, "speed1", narration, clips, clip_duration=4.0).video, 1.5)
    fast = frame_at(
        render(d, "speed2", narration, clips, clip_duration=2.0, clip_speed=2.0).video, 1.5
    )
    assert normal[..., 1].mean() > 150 and normal[..., 0].mean() < 80  # lime at 1.5 s
    assert fast[..., :2].mean() > 200  # white: source second 3 at 1.5 s, twice as fast


def test_image_becomes_a_ken_burns_clip(d, narration):
    img = make_image(d / "still.png", size="640x480")
    video = render(d, "kenburns", narration, [clip_of(img)], clip_duration=4.0).video
    first, later = frame_at(video, 0.1).astype(int), frame_at(video, 3.5).astype(int)
    assert np.abs(first - later).mean() > 5  # it moves (zooms in)


def test_music_is_ducked_under_the_voice_fades_out_and_loops(d):
    script = make_script("", "The quick brown fox jumps over the lazy dog. A second sentence.")
    narration = synthesize(script, "piper:en_US-joe-medium", 1.0, 2.0, d / "n2")
    music = sine(d / "tone.m4a", MUSIC_HZ, 1.0)  # 1 s: must loop to cover the video
    clips = [colour_clip(d / "grey.mp4", "gray")]
    out = render(
        d, "ducked", narration, clips, music=music, music_volume=0.3, music_fade_out=1.0, tail_s=1.5
    ).video
    s0, s1 = narration.sentences
    speaking = band_rms(out, MUSIC_HZ, s0.start_s + 0.3, s0.end_s - 0.2)
    pause = band_rms(out, MUSIC_HZ, s0.end_s + 0.6, s1.start_s - 0.2)
    assert pause > speaking + 6, (pause, speaking)  # at least 6 dB quieter under the voice
    end = narration.duration_s + 1.5
    assert band_rms(out, MUSIC_HZ, end - 0.3, end) < pause - 10  # faded out
    assert abs(media(out)["duration"] - end) < 0.15  # the tail is there
    flat = render(
        d,
        "unducked",
        narration,
        clips,
        music=music,
        music_volume=0.3,
        music_fade_out=0.0,
        duck=False,
    ).video
    assert (
        abs(
            band_rms(flat, MUSIC_HZ, s0.start_s + 0.3, s0.end_s - 0.2)
            - band_rms(flat, MUSIC_HZ, s0.end_s + 0.6, s1.start_s - 0.2)
        )
        < 2
    )


def test_loudness_is_normalised_to_target(d, narration):
    music = sine(d / "low.m4a", 220, 3.0)
    clips = [colour_clip(d / "grey2.mp4", "gray")]
    for target in (-14.0, -20.0):
        out = render(d, f"loud{target}", narration, clips, music=music, loudness=target).video
        measured = integrated_lufs(out)
        assert abs(measured - target) <= 1.0, (target, measured)


def test_fps_and_quality_settings(d, narration):
    clips = (
        [clip_of(d / "bars.mp4")]
        if (d / "bars.mp4").exists()
        else [colour_clip(d / "c.mp4", "orange")]
    )
    low = render(d, "crf40", narration, clips, crf=40, fps=24).video
    high = render(d, "crf18", narration, clips, crf=18).video
    assert probe(low).fps == pytest.approx(24, abs=0.01)
    assert probe(high).fps == pytest.approx(30, abs=0.01)
    assert high.stat().st_size > 2 * low.stat().st_size


def test_encoder_auto_detects_and_hardware_failure_falls_back(d, narration):
    clips = [colour_clip(d / "grey3.mp4", "gray")]
    auto = render(d, "auto", narration, clips)
    assert auto.encoder in {"libx264", "h264_nvenc", "h264_qsv", "h264_vaapi"}
    if "h264_nvenc" not in ffmpeg_encoders():
        pytest.skip("this ffmpeg build has no NVENC")
    forced = render(d, "nvenc", narration, clips, encoder=Encoder.h264_nvenc)
    if forced.encoder == "libx264":  # no NVIDIA device here: the fallback ran
        assert any("h264_nvenc failed" in w for w in forced.warnings)
    assert media(forced.video)["video_codec"] == "h264"


def test_encode_reports_progress(tmp_path):
    seen: list[float] = []
    run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=30:d=3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-f",
            "mp4",
            str(tmp_path / "p.mp4"),
        ],
        on_progress=seen.append,
    )
    assert seen and seen == sorted(seen) and seen[-1] > 2.5


def test_too_little_material_is_reused_until_the_narration_ends(d, narration):
    one_second = [colour_clip(d / "short.mp4", "purple", seconds=1.0)]
    out = render(d, "reused", narration, one_second, clip_duration=4.0)
    assert abs(out.duration_s - narration.duration_s) < 0.15
    assert out.cuts >= int(narration.duration_s)


def test_variants_differ_reproducibly(d):
    (d / "var").mkdir(exist_ok=True)
    for c in ["red", "green", "blue", "yellow"]:
        colour_clip(d / "var" / f"{c}.mp4", c)
    a = pick_materials(["x"], 8, SIZE, d / "var", 2.0, Concat.random, 3, seed=5)
    b = pick_materials(["x"], 8, SIZE, d / "var", 2.0, Concat.random, 3, seed=5)
    assert a.scenes[0].picks == b.scenes[0].picks
    assert len({tuple(t) for t in a.scenes[0].picks}) == 3


@pytest.fixture
def streamed(monkeypatch):
    """Force the segment-streamed picture path, as long timelines use."""
    from blocks.settings import get_settings

    monkeypatch.setattr(get_settings(), "render_max_inputs", 0)


@pytest.mark.parametrize("transition", [Transition.none, Transition.fade])
def test_streamed_segments_match_the_one_graph_render(d, narration, transition, monkeypatch):
    from blocks.settings import get_settings

    src = make_video(d / "moving.mp4", "640x360", 6)
    clips = [clip_of(src), colour_clip(d / "red.mp4", "red"), clip_of(make_image(d / "i.png"))]
    kw = {"clip_duration": 1.5, "transition": transition, "transition_duration": 0.5}
    one = render(d, f"one_{transition}", narration, clips, **kw)
    monkeypatch.setattr(get_settings(), "render_max_inputs", 0)
    seg = render(d, f"seg_{transition}", narration, clips, **kw)
    assert (one.streamed, seg.streamed) == (False, True)
    assert seg.cuts == one.cuts >= 3
    assert abs(seg.duration_s - one.duration_s) < 0.05
    for t in np.arange(0.2, narration.duration_s - 0.2, 0.35):
        a, b = frame_at(one.video, t).astype(int), frame_at(seg.video, t).astype(int)
        assert np.abs(a - b).mean() < 1.5, t


def test_streamed_render_keeps_subtitles_and_audio(d, narration, streamed):
    style = SubtitleStyle(size=90)
    subs = make_subtitles(narration, style, resolve_font(style.font, "x"), SIZE, d / "ss")
    black = [colour_clip(d / "black3.mp4", "black", seconds=1.0)]
    out = render(d, "streamed_subs", narration, black, subtitles=subs, clip_duration=1.0)
    assert out.streamed
    info = media(out.video)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    cue = subs.cues[0]
    f = frame_at(out.video, (cue.start_s + cue.end_s) / 2).mean(axis=2)
    assert (f[int(SIZE[1] * 0.6) :] > 128).sum() > 200


def test_cjk_script_renders_in_a_cjk_font_inside_the_frame(d):
    text = "咖啡是世界上最受欢迎的饮料之一，它生长在赤道附近的热带地区。烘焙让咖啡豆散发出香气。"
    script = make_script("", text)
    narration = synthesize(script, "piper:en_US-joe-medium", 1.5, 0.2, d / "cjk")
    style = SubtitleStyle(size=110)
    font = resolve_font(style.font, script.text)
    assert "CJK" in font.family
    subs = make_subtitles(narration, style, font, SIZE, d / "cjk")
    assert f"Style: Default,{font.family}," in subs.ass.read_text()
    black = [colour_clip(d / "black4.mp4", "black", seconds=2.0)]
    out = render(d, "cjk", narration, black, subtitles=subs, clip_duration=2.0)
    for cue in subs.cues:
        f = frame_at(out.video, (cue.start_s + cue.end_s) / 2).mean(axis=2)
        cols = np.flatnonzero((f > 128).any(axis=0))
        assert cols.size > 20  # glyphs drawn, not empty boxes
        assert cols.min() > 2 and cols.max() < SIZE[0] - 3  # no line leaves the frame
