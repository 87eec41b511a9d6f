"""The options the stages share with the request model: enums and the subtitle style.

They live below the flows so that a stage takes plain options and knows nothing of the
request; `flows.spec.VideoSpec` builds its fields from them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HEX_COLOUR = r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$"


class Aspect(StrEnum):
    portrait = "9:16"
    landscape = "16:9"
    square = "1:1"


class Resolution(StrEnum):
    p1080 = "1080p"
    p720 = "720p"
    p540 = "540p"


class Fit(StrEnum):
    cover = "cover"
    contain = "contain"


class Concat(StrEnum):
    random = "random"
    sequential = "sequential"


class Transition(StrEnum):
    """Values other than none and random are ffmpeg xfade transitions."""

    none = "none"
    fade = "fade"
    fadeblack = "fadeblack"
    slideleft = "slideleft"
    slideright = "slideright"
    slideup = "slideup"
    slidedown = "slidedown"
    wipeleft = "wipeleft"
    zoomin = "zoomin"
    dissolve = "dissolve"
    circleopen = "circleopen"
    random = "random"


class Background(StrEnum):
    blur = "blur"
    color = "color"


class Encoder(StrEnum):
    auto = "auto"
    libx264 = "libx264"
    h264_nvenc = "h264_nvenc"
    h264_qsv = "h264_qsv"
    h264_vaapi = "h264_vaapi"


class Position(StrEnum):
    top = "top"
    center = "center"
    bottom = "bottom"
    custom = "custom"


def ordered_schema(schema: dict[str, Any]) -> None:
    """Give each property of a model's JSON schema its `position`: forms (the Prefect UI's)
    sort by it, since PostgreSQL's JSONB stores the deployment's schema with its keys
    reordered, shortest first."""
    for i, prop in enumerate(schema.get("properties", {}).values()):
        prop.setdefault("position", i)


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
