"""How subtitles look: the `subtitles` part of a request, and what the subtitles stage takes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from spec.form import ordered_schema
from spec.options import HEX_COLOUR, Position


class SubtitleStyle(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ordered_schema)

    enabled: bool = Field(True, title="Subtitles", description="Burn subtitles into the video.")
    font: str = Field(
        "DejaVu Sans:bold",
        title="Font",
        description="A font file path or a fontconfig family name (e.g. 'Noto Sans CJK SC').",
        min_length=1,
        max_length=300,
    )
    size: int = Field(72, title="Font size", description="Pixels at 1080p.", ge=12, le=200)
    color: str = Field("#FFFFFF", title="Text colour", pattern=HEX_COLOUR)
    stroke_color: str = Field("#000000", title="Stroke colour", pattern=HEX_COLOUR)
    stroke_width: float = Field(4.0, title="Stroke width", description="Pixels.", ge=0, le=20)
    position: Position = Field(Position.bottom, title="Position")
    custom_position_pct: float = Field(
        75.0,
        title="Custom position (%)",
        description="Vertical centre of the text, in % of the frame height from the top; "
        "used when position is 'custom'.",
        ge=0,
        le=100,
    )
    max_lines: int = Field(2, title="Lines per cue", ge=1, le=4)
    box: bool = Field(False, title="Background box", description="A box behind the text.")
    box_color: str = Field("#000000", title="Box colour", pattern=HEX_COLOUR)
    box_opacity: float = Field(0.5, title="Box opacity", ge=0.0, le=1.0)
    word_highlight: bool = Field(
        False, title="Word highlight", description="Colour each word as it is spoken."
    )
    highlight_color: str = Field("#FFD700", title="Highlight colour", pattern=HEX_COLOUR)
    word_pop: bool = Field(
        False,
        title="Words pop in",
        description="Each word appears as it is spoken, scaled in (with or without highlight).",
    )
