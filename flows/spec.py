"""What a user asks for: the parameters of the video flow.

Its JSON schema is the form the Prefect UI shows for the deployment, so every field has a
title, a description and bounds. Every entry point (CLI, API, MCP, UI) validates a request
with this model before any work starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.options import (
    HEX_COLOUR,
    Aspect,
    Background,
    Concat,
    Encoder,
    Fit,
    Resolution,
    SubtitleStyle,
    Transition,
    ordered_schema,
)
from tasks.upscale import WEIGHT_SUFFIXES

# Short side in pixels; 9:16 at 1080p is 1080×1920.
_SHORT_SIDE = {Resolution.p1080: 1080, Resolution.p720: 720, Resolution.p540: 540}


def _exists(path: Path, test: Callable[[Path], bool]) -> bool:
    """`path.is_file()` or `is_dir()`, False for a name the file system refuses (too long)."""
    try:
        return test(path)
    except OSError:
        return False


class VideoSpec(BaseModel):
    """One request for a short video. Fields are in the order a person fills the form:
    the Prefect UI shows them so (see `ordered_schema`), grouped like `mpt make --help`."""

    model_config = ConfigDict(
        extra="forbid", use_enum_values=False, json_schema_extra=ordered_schema
    )

    topic: str = Field("", title="Topic", description="What the video is about.", max_length=500)
    script: str | None = Field(
        None,
        title="Script",
        description="Your own narration text; when given, no LLM is called.",
        max_length=100_000,
    )
    language: str = Field(
        "auto",
        title="Language",
        description="BCP-47 code such as 'en' or 'zh', or 'auto' to detect from the script.",
        pattern=r"^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})*)$",
    )
    aspect: Aspect = Field(Aspect.portrait, title="Aspect ratio")
    resolution: Resolution = Field(
        Resolution.p1080, title="Resolution", description="Short side: 1080, 720 or 540 px."
    )
    fps: int = Field(30, title="Frames per second", ge=15, le=60)
    fit: Fit = Field(
        Fit.cover,
        title="Fit",
        description="'cover' crops footage to fill the frame; 'contain' shows all of it "
        "over a blurred copy.",
    )
    background: Background = Field(
        Background.blur,
        title="Contain background",
        description="With fit 'contain': a blurred copy of the clip, or a solid colour.",
    )
    background_color: str = Field("#000000", title="Background colour", pattern=HEX_COLOUR)
    materials_dir: Path | None = Field(
        None,
        title="Materials folder",
        description="Local videos and images to cut from; procedural backgrounds fill any gap.",
    )
    clip_duration: float = Field(
        4.0, title="Longest cut (s)", description="No cut lasts longer.", ge=1.0, le=30.0
    )
    clip_speed: float = Field(
        1.0, title="Clip speed", description="Footage playback speed.", ge=0.5, le=2.0
    )
    upscale: str = Field(
        "none",
        title="Upscale footage",
        description="'none'; 'auto': footage smaller than the frame is upscaled ×2 or ×4 with "
        "the best model in the weights folder (on the gpu pool, else here); or a weights "
        "file's name. `mpt upscale --list` shows them.",
        min_length=1,
        max_length=200,
    )
    concat: Concat = Field(Concat.random, title="Clip order")
    video_count: int = Field(
        1, title="Videos", description="How many variants to render.", ge=1, le=5
    )
    transition: Transition = Field(Transition.none, title="Transition between cuts")
    transition_duration: float = Field(0.5, title="Transition length (s)", ge=0.1, le=2.0)
    voice: str = Field(
        "piper:en_US-joe-medium",
        title="Voice",
        description="ENGINE:NAME: piper or espeak offline; edge, azure, openai or sovits over "
        "the network (an offline voice takes over if it fails). `mpt voices` lists them.",
        min_length=1,
        max_length=200,
    )
    speech_rate: float = Field(1.0, title="Speech rate", ge=0.5, le=2.0)
    voice_volume: float = Field(1.0, title="Voice volume", ge=0.0, le=2.0)
    sentence_pause: float = Field(0.3, title="Pause between sentences (s)", ge=0.0, le=2.0)
    audio: Path | None = Field(
        None,
        title="Narration file",
        description="Your own recorded narration; it is timed by offline speech recognition, "
        "and transcribed into the script when no script is given.",
    )
    subtitles: SubtitleStyle = Field(default_factory=SubtitleStyle, title="Subtitles")
    music: str = Field(
        "none",
        title="Music",
        description="'none', 'random' (from the music folder) or a path to an audio file.",
        min_length=1,
        max_length=1000,
    )
    music_volume: float = Field(0.2, title="Music volume", ge=0.0, le=1.0)
    music_fade_out: float = Field(
        2.0, title="Music fade-out (s)", description="Over the last N seconds.", ge=0.0, le=10.0
    )
    duck: bool = Field(
        True, title="Duck music", description="Lower the music while the voice speaks."
    )
    tail_s: float = Field(
        0.0, title="Tail (s)", description="Picture and music after the last word.", ge=0, le=5
    )
    loudness: float | None = Field(
        -14.0,
        title="Loudness (LUFS)",
        description="Normalise the final mix to this integrated loudness; empty to skip.",
        ge=-30.0,
        le=-5.0,
    )
    preset: str = Field(
        "veryfast",
        title="x264 preset",
        pattern=r"^(ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow)$",
    )
    crf: int = Field(23, title="Quality (CRF)", description="Lower is better.", ge=0, le=51)
    encoder: Encoder = Field(
        Encoder.auto,
        title="Encoder",
        description="'auto' uses NVENC, QSV or VAAPI when a device answers, else libx264; "
        "a failed hardware encode falls back to libx264.",
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        None,
        title="Seed",
        description="Makes random choices reproducible; derived from the script when empty.",
    )
    review: bool = Field(
        False,
        title="Review before publishing",
        description="Render, then wait for someone to approve or reject the video before it "
        "is published (the service only: the run waits suspended, holding no worker).",
    )

    @field_validator("topic")
    @classmethod
    def _strip_topic(cls, v: str) -> str:
        return v.strip()

    @field_validator("script")
    @classmethod
    def _script_has_words(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not v:
            return None
        if not any(ch.isalnum() for ch in v):
            raise ValueError("script has no words to speak (only punctuation or symbols)")
        return v

    @field_validator("music")
    @classmethod
    def _music_exists(cls, v: str) -> str:
        v = v.strip()
        if v in ("none", "random"):
            return v
        if not _exists(Path(v).expanduser(), Path.is_file):
            raise ValueError(f"music file not found: {v}")
        return str(Path(v).expanduser().resolve())

    @field_validator("audio")
    @classmethod
    def _audio_exists(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        v = v.expanduser()
        if not _exists(v, Path.is_file):
            raise ValueError(f"audio file not found: {v}")
        return v.resolve()

    @field_validator("materials_dir")
    @classmethod
    def _materials_dir_exists(cls, v: Path | None) -> Path | None:
        if v is None:
            return None
        v = v.expanduser()
        if not _exists(v, Path.is_dir):
            raise ValueError(f"materials folder does not exist: {v}")
        return v.resolve()

    @field_validator("upscale")
    @classmethod
    def _upscale_choice(cls, v: str) -> str:
        v = v.strip()
        if v in ("none", "auto"):
            return v
        if "/" in v or "\\" in v or v.startswith("."):
            raise ValueError("upscale takes a weights file's name, not a path")
        if not v.lower().endswith(WEIGHT_SUFFIXES):
            raise ValueError(
                f"upscale must be 'none', 'auto' or a weights file ({', '.join(WEIGHT_SUFFIXES)})"
            )
        return v

    @field_validator("voice")
    @classmethod
    def _known_voice(cls, v: str) -> str:
        from blocks.tts import NETWORK_ENGINES
        from tasks.narration import available_voices

        engine, _, name = v.partition(":")
        if engine in NETWORK_ENGINES and name.strip():
            return v  # a network voice: its provider checks the name when it speaks

        names = [voice.id for voice in available_voices()]
        if v not in names:
            raise ValueError(f"unknown voice '{v}'; valid voices: {', '.join(names)}")
        return v

    @model_validator(mode="after")
    def _topic_or_script(self) -> VideoSpec:
        if not self.topic and not self.script and not self.audio:
            raise ValueError("give a topic or a script: both are empty")
        return self

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, both even."""
        short = _SHORT_SIDE[self.resolution]
        long = short * 16 // 9
        long += long % 2
        if self.aspect == Aspect.portrait:
            return short, long
        if self.aspect == Aspect.landscape:
            return long, short
        return short, short

    def effective_seed(self) -> int:
        """The seed, or a stable one derived from the text so reruns choose the same clips."""
        if self.seed is not None:
            return self.seed
        import hashlib

        text = (self.script or self.topic).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


# Where a validation error says the value came from, which is no part of the field's name.
_LOCATIONS = {"__root__", "body", "query", "path", "header"}


def first_error(exc: BaseException) -> str:
    """One line for a user from any exception; from a validation error (pydantic's, or
    FastAPI's for a request), its first error as `field: message`."""
    from pydantic import ValidationError

    errors = exc.errors() if isinstance(exc, ValidationError) else None
    if errors is None and type(exc).__name__ == "RequestValidationError":
        errors = exc.errors()  # type: ignore[attr-defined] - FastAPI's, same shape
    if errors:
        err = errors[0]
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in _LOCATIONS)
        msg = re.sub(r"^(Value|Assertion) error, ", "", str(err.get("msg", exc)))
        return f"{loc}: {msg}" if loc else msg
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
