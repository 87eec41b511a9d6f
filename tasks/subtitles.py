"""Subtitles stage: SRT and styled ASS cues, timed from the narration's measured timings.

Lines are wrapped by measuring the text in the actual font (Pillow), so no line runs off the
frame whatever the script's language; the ASS file disables libass's own wrapping so what
was measured is what is drawn.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont
from pydantic import BaseModel

from blocks.errors import BadInput
from spec.options import Position
from spec.subtitles import SubtitleStyle
from tasks.files import write_text_atomic
from tasks.stage import stage, stage_dir
from tasks.text import CJK, join_words
from tasks.timings import Narration, WordTiming

log = logging.getLogger(__name__)

SIDE_MARGIN = 0.07  # of the frame width, each side
EDGE_MARGIN = 0.10  # of the frame height, for top and bottom placement
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
FALLBACK_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


class FontChoice(BaseModel):
    file: Path
    family: str
    index: int = 0
    bold: bool = False


class Cue(BaseModel):
    start_s: float
    end_s: float
    lines: list[list[WordTiming]]

    def text(self, sep: str = "\n") -> str:
        return sep.join(line_text(line) for line in self.lines)


class Subtitles(BaseModel):
    srt: Path
    ass: Path
    font: FontChoice
    cues: list[Cue]

    def files(self) -> list[Path]:
        return [self.srt, self.ass, self.font.file]


def needed_lang(text: str) -> str | None:
    """The fontconfig language a font must cover to draw `text`, if beyond Latin."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if CJK.search(text):
        return "zh-cn"
    return None


def _fc_match(pattern: str) -> FontChoice | None:
    if not shutil.which("fc-match"):
        return None
    out = subprocess.run(
        ["fc-match", "-f", "%{file}|%{family[0]}|%{index}|%{style[0]}", pattern],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    parts = out.split("|")
    if len(parts) != 4 or not Path(parts[0]).is_file():
        return None
    return FontChoice(
        file=Path(parts[0]),
        family=parts[1],
        index=int(parts[2] or 0),
        bold="bold" in parts[3].lower(),
    )


@lru_cache
def _fonts_for_lang(lang: str) -> frozenset[str]:
    if not shutil.which("fc-list"):
        return frozenset()
    out = subprocess.run(
        ["fc-list", f":lang={lang}", "file"], capture_output=True, text=True, timeout=10
    ).stdout
    return frozenset(line.rstrip(": ").strip() for line in out.splitlines() if line.strip())


def resolve_font(font: str, text: str) -> FontChoice:
    """A font file for `font` (a path or a family) that can draw every character of `text`."""
    return _resolve_font(font, needed_lang(text))


@lru_cache(maxsize=256)
def _resolve_font(font: str, lang: str | None) -> FontChoice:
    # Cached: a batch checks every row's font, and each look-up runs fc-match.
    path = Path(font).expanduser()
    if path.suffix.lower() in {".ttf", ".otf", ".ttc"}:
        if not path.is_file():
            raise BadInput(f"font file not found: {font}")
        pil = ImageFont.truetype(str(path), 20)
        family, style = pil.getname()
        return FontChoice(file=path.resolve(), family=family, bold="bold" in style.lower())
    choice = _fc_match(font)
    if lang and (choice is None or str(choice.file) not in _fonts_for_lang(lang)):
        bold = ":bold" if choice is None or choice.bold else ""
        choice = _fc_match(f":lang={lang}{bold}")
        if choice is None or str(choice.file) not in _fonts_for_lang(lang):
            raise BadInput(f"no installed font can draw {lang} text; install fonts-noto-cjk")
    if choice is None:
        if not FALLBACK_FONT.is_file():
            raise BadInput(f"font not found: {font}")
        choice = FontChoice(file=FALLBACK_FONT, family="DejaVu Sans", bold=True)
    return choice


def line_text(line: list[WordTiming]) -> str:
    """A subtitle line's words as the script wrote them."""
    return join_words((w.text, w.spaced) for w in line)


def wrap_words(
    words: list[WordTiming], measure: Callable[[str], float], max_width: float
) -> list[list[WordTiming]]:
    """Greedy wrap by measured width, breaking only between words; a word wider than a
    line (a long URL) is split by characters."""
    lines: list[list[WordTiming]] = []
    line: list[WordTiming] = []
    for word in words:
        if measure(word.text) > max_width:
            # Split an overlong token into pieces that fit, sharing its time span.
            pieces, piece = [], ""
            for ch in word.text:
                if piece and measure(piece + ch) > max_width:
                    pieces.append(piece)
                    piece = ""
                piece += ch
            pieces.append(piece)
            step = (word.end_s - word.start_s) / len(pieces)
            expanded = [
                WordTiming(
                    text=p,
                    start_s=word.start_s + i * step,
                    end_s=word.start_s + (i + 1) * step,
                    spaced=word.spaced if i == 0 else False,
                )
                for i, p in enumerate(pieces)
            ]
        else:
            expanded = [word]
        for w in expanded:
            candidate = [*line, w]
            if line and measure(line_text(candidate)) > max_width:
                lines.append(line)
                line = [w]
            else:
                line = candidate
    if line:
        lines.append(line)
    return lines


def balanced_wrap(
    words: list[WordTiming], measure: Callable[[str], float], max_width: float
) -> list[list[WordTiming]]:
    """The greedy wrap's line count, at the narrowest width that keeps it: even lines."""
    lines = wrap_words(words, measure, max_width)
    lo, hi = max_width / 2, max_width
    for _ in range(10):
        mid = (lo + hi) / 2
        if len(wrap_words(words, measure, mid)) <= len(lines):
            hi = mid
        else:
            lo = mid
    return wrap_words(words, measure, hi)


def font_px(style: SubtitleStyle, size: tuple[int, int]) -> int:
    """The style's size is given for a 1080-px short side; scale to this frame."""
    return max(8, round(style.size * min(size) / 1080))


def build_cues(
    narration: Narration, style: SubtitleStyle, font: FontChoice, size: tuple[int, int]
) -> list[Cue]:
    px = font_px(style, size)
    pil = ImageFont.truetype(str(font.file), px, index=font.index)
    stroke = style.stroke_width * px / style.size
    max_width = size[0] * (1 - 2 * SIDE_MARGIN) - 2 * stroke
    cues: list[Cue] = []
    for sentence in narration.sentences:
        lines = balanced_wrap(sentence.words, pil.getlength, max_width)
        # Spread lines evenly over the fewest cues, so no cue is a lone trailing word.
        count = -(-len(lines) // style.max_lines)
        start = 0
        for k in range(count):
            size_k = len(lines) // count + (1 if k < len(lines) % count else 0)
            group = lines[start : start + size_k]
            start += size_k
            cues.append(Cue(start_s=group[0][0].start_s, end_s=group[-1][-1].end_s, lines=group))
    return cues


def _ts_srt(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _ts_ass(t: float) -> str:
    cs = round(t * 100)
    return f"{cs // 360000:d}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _ass_colour(hex_colour: str) -> str:
    """#RRGGBB[AA] (AA = opacity) → &HAABBGGRR (AA = transparency)."""
    h = hex_colour.lstrip("#")
    r, g, b = h[0:2], h[2:4], h[4:6]
    alpha = 255 - int(h[6:8], 16) if len(h) == 8 else 0
    return f"&H{alpha:02X}{b}{g}{r}".upper()


def _ass_escape(text: str) -> str:
    # Braces open override blocks and a backslash starts an escape in ASS.
    return text.replace("\\", "\u29f5").replace("{", "(").replace("}", ")")


def _box_style(
    style: SubtitleStyle, font: FontChoice, px: int, align: int, margin_h: int, margin_v: int
) -> str:
    """A style that draws only a box (BorderStyle 3) under the text, on a lower layer.

    libass draws BorderStyle 3's box in the outline colour; the text itself is made fully
    transparent, so the real text on the layer above keeps its own stroke.
    """
    alpha = round(255 * (1 - style.box_opacity))
    rgb = style.box_color.lstrip("#")[:6]
    box = f"&H{alpha:02X}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}".upper()
    pad = max(2, round(px * 0.25))
    return (
        f"Style: Box,{font.family},{px},&HFF000000,&HFF000000,{box},{box},"
        f"{-1 if font.bold else 0},0,0,0,100,100,0,0,3,{pad},0,{align},{margin_h},{margin_h},"
        f"{margin_v},1\n"
    )


def render_srt(cues: list[Cue]) -> str:
    blocks = [
        f"{i}\n{_ts_srt(c.start_s)} --> {_ts_srt(c.end_s)}\n{c.text()}\n"
        for i, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def render_ass(
    cues: list[Cue], style: SubtitleStyle, font: FontChoice, size: tuple[int, int]
) -> str:
    w, h = size
    px = font_px(style, size)
    outline = round(style.stroke_width * px / style.size, 2)
    align = {Position.top: 8, Position.center: 5, Position.bottom: 2, Position.custom: 5}
    margin_v = round(h * EDGE_MARGIN) if style.position in (Position.top, Position.bottom) else 0
    margin_h = round(w * SIDE_MARGIN)
    # With karaoke, text not yet spoken shows the secondary colour and spoken text the primary.
    primary = style.highlight_color if style.word_highlight else style.color
    header = (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {w}\nPlayResY: {h}\nWrapStyle: 2\nScaledBorderAndShadow: yes\n"
        "YCbCr Matrix: TV.709\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{font.family},{px},{_ass_colour(primary)},{_ass_colour(style.color)},"
        f"{_ass_colour(style.stroke_color)},&H80000000,{-1 if font.bold else 0},0,0,0,100,100,"
        f"0,0,1,{outline},0,{align[style.position]},{margin_h},{margin_h},{margin_v},1\n"
        + (
            _box_style(style, font, px, align[style.position], margin_h, margin_v)
            if style.box
            else ""
        )
        + "\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
        "Text\n"
    )
    pos = ""
    if style.position == Position.custom:
        pos = f"{{\\an5\\pos({w // 2},{round(h * style.custom_position_pct / 100)})}}"
    events = []
    for cue in cues:
        if style.word_highlight or style.word_pop:
            rows = []
            for line in cue.lines:
                parts = []
                for k, word in enumerate(line):
                    tags = ""
                    if style.word_highlight:
                        tags += f"\\k{max(1, round((word.end_s - word.start_s) * 100))}"
                    if style.word_pop:
                        tags += _pop(word.start_s - cue.start_s)
                    space = " " if k and word.spaced else ""
                    parts.append(f"{space}{{{tags}}}{_ass_escape(word.text)}")
                rows.append("".join(parts))
            text = "\\N".join(rows)
        else:
            text = "\\N".join(_ass_escape(line_text(line)) for line in cue.lines)
        span = f"{_ts_ass(cue.start_s)},{_ts_ass(cue.end_s)}"
        if style.box:
            plain = "\\N".join(_ass_escape(line_text(ln)) for ln in cue.lines)
            events.append(f"Dialogue: 0,{span},Box,,0,0,0,,{pos}{plain}")
        events.append(f"Dialogue: 1,{span},Default,,0,0,0,,{pos}{text}")
    return header + "\n".join(events) + "\n"


POP_MS = 140  # how long a word takes to scale in


def _pop(at_s: float) -> str:
    """ASS tags for a word that appears `at_s` after its cue starts, scaled in from 60 %."""
    ms = max(0, round(at_s * 1000))
    return (
        f"\\alpha&HFF&\\fscx60\\fscy60\\t({ms},{ms + 1},\\alpha&H00&)"
        f"\\t({ms},{ms + POP_MS},\\fscx100\\fscy100)"
    )


def make_subtitles(
    narration: Narration,
    style: SubtitleStyle,
    font: FontChoice,
    size: tuple[int, int],
    out_dir: Path,
) -> Subtitles:
    cues = build_cues(narration, style, font, size)
    srt = write_text_atomic(out_dir / "subtitles.srt", render_srt(cues))
    ass = write_text_atomic(out_dir / "subtitles.ass", render_ass(cues, style, font, size))
    log.info(
        "subtitles: %d cues in %s (%s, %d px, %s)",
        len(cues),
        out_dir,
        font.family,
        font_px(style, size),
        "+".join(
            k for k, on in (("highlight", style.word_highlight), ("pop", style.word_pop)) if on
        )
        or "plain",
    )
    return Subtitles(srt=srt, ass=ass, font=font, cues=cues)


@stage("subtitles")
def subtitles_stage(
    narration: Narration, style: SubtitleStyle, font: FontChoice, size: tuple[int, int]
) -> Subtitles:
    out_dir = stage_dir("subtitles", narration, style, font, list(size))
    return make_subtitles(narration, style, font, size, out_dir)
