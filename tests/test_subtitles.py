import re

import pytest
from PIL import ImageFont

from blocks.errors import BadInput
from spec.options import Position
from spec.subtitles import SubtitleStyle
from tasks.subtitles import SIDE_MARGIN, font_px, make_subtitles, resolve_font
from tasks.timings import Narration, SentenceTiming, word_timings


def _narration(tmp_path, sentences: list[str], seconds_each: float = 3.0) -> Narration:
    timed, t = [], 0.0
    for text in sentences:
        timed.append(
            SentenceTiming(
                text=text,
                start_s=t,
                end_s=t + seconds_each,
                words=word_timings(text, t, t + seconds_each),
            )
        )
        t += seconds_each + 0.3
    return Narration(
        audio=tmp_path / "a.wav",
        timings=tmp_path / "t.json",
        voice="v",
        duration_s=t,
        sample_rate=22050,
        sentences=timed,
    )


LONG = (
    "Supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis "
    "is a very long sentence with many words that must wrap over several lines and cues "
    "because a portrait frame is narrow."
)
CJK = "咖啡是世界上最受欢迎的饮料之一，它生长在赤道附近的热带地区，烘焙让咖啡豆散发出浓郁的香气。"


@pytest.mark.parametrize("text", [LONG, CJK])
@pytest.mark.parametrize("size", [(1080, 1920), (540, 960), (1920, 1080)])
def test_no_line_runs_off_the_frame(tmp_path, text, size):
    style = SubtitleStyle(size=90)
    font = resolve_font(style.font, text)
    subs = make_subtitles(_narration(tmp_path, [text]), style, font, size, tmp_path)
    pil = ImageFont.truetype(str(font.file), font_px(style, size), index=font.index)
    limit = size[0] * (1 - 2 * SIDE_MARGIN)
    lines = [line for cue in subs.cues for line in cue.text().split("\n")]
    assert len(lines) >= 2
    assert all(pil.getlength(line) <= limit for line in lines)
    assert all(len(cue.lines) <= style.max_lines for cue in subs.cues)
    # Every character of the script is shown, in order.
    shown = "".join(lines).replace(" ", "")
    assert shown == text.replace(" ", "")


def test_cjk_text_gets_a_cjk_font():
    font = resolve_font("DejaVu Sans:bold", CJK)
    assert "CJK" in font.family or "WenQuanYi" in font.family


def test_missing_font_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="font file not found"):
        resolve_font(str(tmp_path / "nope.ttf"), "hi")


def test_srt_cues_follow_timings(tmp_path):
    narration = _narration(tmp_path, ["First sentence here.", "Second one."])
    style = SubtitleStyle()
    subs = make_subtitles(narration, style, resolve_font(style.font, "x"), (1080, 1920), tmp_path)
    srt = subs.srt.read_text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:03,000\nFirst sentence here.\n")
    assert "2\n00:00:03,300 --> 00:00:06,300\nSecond one.\n" in srt


def test_ass_style_position_and_karaoke(tmp_path):
    narration = _narration(tmp_path, ["One two three."])
    style = SubtitleStyle(
        position=Position.top,
        word_highlight=True,
        color="#FF0000",
        highlight_color="#00FF00",
        stroke_color="#0000FF",
    )
    subs = make_subtitles(narration, style, resolve_font(style.font, "x"), (1080, 1920), tmp_path)
    ass = subs.ass.read_text()
    fields = re.search(r"^Style: Default,(.*)$", ass, re.M).group(1).split(",")
    # Primary (spoken) is the highlight, secondary the base colour, outline the stroke.
    assert fields[2:5] == ["&H0000FF00", "&H000000FF", "&H00FF0000"]
    assert fields[17] == "8"  # top centre
    dialogue = re.search(r"^Dialogue: .*,,(.*)$", ass, re.M).group(1)
    assert re.fullmatch(r"\{\\k(\d+)\}One \{\\k(\d+)\}two \{\\k(\d+)\}three\.", dialogue)
    assert "WrapStyle: 2" in ass


def test_words_pop_in_as_they_are_spoken(tmp_path):
    """Each word hidden until its time, then scaled in; burned in, a later frame of the cue
    shows more text than an earlier one."""
    import numpy as np

    from tasks.media import write_wav
    from tasks.render import RenderOptions, render_video
    from tasks.storyboard import pick_materials

    from .conftest import frame_at

    narration = _narration(tmp_path, ["One two three four."])
    write_wav(narration.audio, np.zeros(int(22050 * narration.duration_s), np.int16), 22050)
    style = SubtitleStyle(word_pop=True, size=90)
    subs = make_subtitles(narration, style, resolve_font(style.font, "x"), (540, 960), tmp_path)
    dialogue = re.search(r"^Dialogue: .*,,(.*)$", subs.ass.read_text(), re.M).group(1)
    words = [w for line in subs.cues[0].lines for w in line]
    starts = [round((w.start_s - subs.cues[0].start_s) * 1000) for w in words]
    for ms in starts:
        assert f"\\t({ms},{ms + 1},\\alpha&H00&)" in dialogue  # shown at its time
    assert dialogue.count("\\alpha&HFF&") == 4 and "\\fscx60" in dialogue
    materials = pick_materials(["x"], narration.duration_s, (540, 960), None, 4.0, "random", 1, 1)
    opts = RenderOptions(size=(540, 960), fps=15, preset="ultrafast", loudness=None)
    video = render_video(materials, 0, narration, subs, None, opts, 1, tmp_path / "pop.mp4")

    def text_pixels(t: float) -> int:  # bright, unsaturated: the white letters
        frame = frame_at(video.video, t).astype(int)
        white = (frame.min(axis=2) > 200) & (frame.max(axis=2) - frame.min(axis=2) < 30)
        return int(white[600:].sum())

    early = text_pixels((words[0].start_s + words[0].end_s) / 2)
    late = text_pixels(words[3].start_s + 0.3)
    assert late > 1.5 * early > 0, (early, late)


def test_custom_position_places_text_by_percent(tmp_path):
    style = SubtitleStyle(position=Position.custom, custom_position_pct=30)
    subs = make_subtitles(
        _narration(tmp_path, ["Hi."]), style, resolve_font(style.font, "x"), (1080, 1920), tmp_path
    )
    assert "{\\an5\\pos(540,576)}Hi." in subs.ass.read_text()
