"""What a user asks for: one video. The flow's parameter model, and the one definition every
entry point derives its options from: `mpt make`'s flags, the REST body, the MCP tools'
parameters, the web UI's form and the Prefect UI's run form.

Only the request's shape is checked here (types, bounds, choices, topic or script); what
needs the machine (files, voices, fonts, weights, an LLM) is `flows.preflight`'s, run once
where a run is created.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from spec.form import Group, group, ordered_schema
from spec.options import (
    HEX_COLOUR,
    WEIGHT_SUFFIXES,
    Aspect,
    Background,
    Concat,
    Encoder,
    Fit,
    Preset,
    Resolution,
    Transition,
)
from spec.scenes import SceneIn, SceneSplit, scenes_from_json
from spec.subtitles import SubtitleStyle

# Short side in pixels; 9:16 at 1080p is 1080×1920.
SHORT_SIDE = {Resolution.p1080: 1080, Resolution.p720: 720, Resolution.p540: 540}

SCRIPT, FRAME, FOOTAGE = group(Group.script), group(Group.frame), group(Group.footage)
TRANSITIONS, VOICE, SUBTITLES = group(Group.transitions), group(Group.voice), group(Group.subtitles)
MUSIC, MIX, ENCODE, OUTPUT = (
    group(Group.music),
    group(Group.mix),
    group(Group.encode),
    group(Group.output),
)


class VideoSpec(BaseModel):
    """One request for a short video. Each field carries its group; forms show the groups in
    the order a person fills them (`spec.form`)."""

    model_config = ConfigDict(
        extra="forbid", use_enum_values=False, json_schema_extra=ordered_schema
    )

    topic: str = Field(
        "",
        title="Topic",
        description="What the video is about.",
        max_length=500,
        json_schema_extra=SCRIPT,
    )
    script: str | None = Field(
        None,
        title="Script",
        description="Your own narration text; when given, no LLM is called.",
        max_length=100_000,
        json_schema_extra=SCRIPT,
    )
    scenes: list[SceneIn] | None = Field(
        None,
        title="Scenes",
        description="Instead of a script: the video scene by scene, each with its text and "
        "optionally its search terms, a clip or a still of your own, and a least duration.",
        max_length=200,
        json_schema_extra=SCRIPT,
    )
    language: str = Field(
        "auto",
        title="Language",
        description="BCP-47 code such as 'en' or 'zh', or 'auto' to detect from the script.",
        pattern=r"^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})*)$",
        json_schema_extra=SCRIPT,
    )
    aspect: Aspect = Field(Aspect.portrait, title="Aspect ratio", json_schema_extra=FRAME)
    resolution: Resolution = Field(
        Resolution.p1080,
        title="Resolution",
        description="Short side: 1080, 720 or 540 px.",
        json_schema_extra=FRAME,
    )
    fps: int = Field(30, title="Frames per second", ge=15, le=60, json_schema_extra=FRAME)
    fit: Fit = Field(
        Fit.cover,
        title="Fit",
        description="'cover' crops footage to fill the frame; 'contain' shows all of it "
        "over a blurred copy.",
        json_schema_extra=FRAME,
    )
    background: Background = Field(
        Background.blur,
        title="Contain background",
        description="With fit 'contain': a blurred copy of the clip, or a solid colour.",
        json_schema_extra=FRAME,
    )
    background_color: str = Field(
        "#000000", title="Background colour", pattern=HEX_COLOUR, json_schema_extra=FRAME
    )
    scene_split: SceneSplit = Field(
        SceneSplit.sentence,
        title="Scene split",
        description="Where the script is cut into scenes, each with footage chosen for its "
        "words: every sentence, every paragraph, or every line.",
        json_schema_extra=FOOTAGE,
    )
    scene_max_s: float = Field(
        10.0,
        title="Longest scene (s)",
        description="A longer paragraph or line is cut into scenes at its sentences.",
        ge=2.0,
        le=60.0,
        json_schema_extra=FOOTAGE,
    )
    materials_dir: Path | None = Field(
        None,
        title="Materials folder",
        description="Local videos and images to cut from; procedural backgrounds fill any gap.",
        json_schema_extra=FOOTAGE,
    )
    clip_duration: float = Field(
        4.0,
        title="Longest cut (s)",
        description="No cut lasts longer.",
        ge=1.0,
        le=30.0,
        json_schema_extra=FOOTAGE,
    )
    clip_speed: float = Field(
        1.0,
        title="Clip speed",
        description="Footage playback speed.",
        ge=0.5,
        le=2.0,
        json_schema_extra=FOOTAGE,
    )
    upscale: str = Field(
        "none",
        title="Upscale footage",
        description="'none'; 'auto': footage smaller than the frame is upscaled ×2 or ×4 with "
        "the best model in the weights folder (on the gpu pool, else here); or a weights "
        "file's name. `mpt upscale --list` shows them.",
        min_length=1,
        max_length=200,
        json_schema_extra=FOOTAGE,
    )
    concat: Concat = Field(Concat.random, title="Clip order", json_schema_extra=FOOTAGE)
    video_count: int = Field(
        1,
        title="Videos",
        description="How many variants to render.",
        ge=1,
        le=5,
        json_schema_extra=FOOTAGE,
    )
    transition: Transition = Field(
        Transition.none, title="Transition between cuts", json_schema_extra=TRANSITIONS
    )
    transition_duration: float = Field(
        0.5, title="Transition length (s)", ge=0.1, le=2.0, json_schema_extra=TRANSITIONS
    )
    voice: str = Field(
        "piper:en_US-joe-medium",
        title="Voice",
        description="ENGINE:NAME: piper or espeak offline; edge, azure, openai or sovits over "
        "the network (an offline voice takes over if it fails); block:NAME:VOICE for a voice "
        "block saved in the Prefect UI. `mpt voices` lists them.",
        min_length=1,
        max_length=200,
        json_schema_extra=VOICE,
    )
    speech_rate: float = Field(1.0, title="Speech rate", ge=0.5, le=2.0, json_schema_extra=VOICE)
    voice_volume: float = Field(1.0, title="Voice volume", ge=0.0, le=2.0, json_schema_extra=VOICE)
    sentence_pause: float = Field(
        0.3, title="Pause between sentences (s)", ge=0.0, le=2.0, json_schema_extra=VOICE
    )
    audio: Path | None = Field(
        None,
        title="Narration file",
        description="Your own recorded narration; it is timed by offline speech recognition, "
        "and transcribed into the script when no script is given.",
        json_schema_extra=VOICE,
    )
    subtitles: SubtitleStyle = Field(
        default_factory=SubtitleStyle, title="Subtitles", json_schema_extra=SUBTITLES
    )
    music: str = Field(
        "none",
        title="Music",
        description="'none', 'random' (from the music folder) or a path to an audio file.",
        min_length=1,
        max_length=1000,
        json_schema_extra=MUSIC,
    )
    music_volume: float = Field(0.2, title="Music volume", ge=0.0, le=1.0, json_schema_extra=MUSIC)
    music_fade_out: float = Field(
        2.0,
        title="Music fade-out (s)",
        description="Over the last N seconds.",
        ge=0.0,
        le=10.0,
        json_schema_extra=MUSIC,
    )
    duck: bool = Field(
        True,
        title="Duck music",
        description="Lower the music while the voice speaks.",
        json_schema_extra=MUSIC,
    )
    tail_s: float = Field(
        0.0,
        title="Tail (s)",
        description="Picture and music after the last word.",
        ge=0,
        le=5,
        json_schema_extra=MUSIC,
    )
    loudness: float | None = Field(
        -14.0,
        title="Loudness (LUFS)",
        description="Normalise the final mix to this integrated loudness; empty (off) to skip.",
        ge=-30.0,
        le=-5.0,
        json_schema_extra=MIX,
    )
    preset: Preset = Field(Preset.veryfast, title="x264 preset", json_schema_extra=ENCODE)
    crf: int = Field(
        23,
        title="Quality (CRF)",
        description="Lower is better.",
        ge=0,
        le=51,
        json_schema_extra=ENCODE,
    )
    encoder: Encoder = Field(
        Encoder.auto,
        title="Encoder",
        description="'auto' uses NVENC, QSV or VAAPI when a device answers, else libx264; "
        "a failed hardware encode falls back to libx264.",
        json_schema_extra=ENCODE,
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        None,
        title="Seed",
        description="Makes random choices reproducible; derived from the script when empty.",
        json_schema_extra=OUTPUT,
    )
    review_storyboard: bool = Field(
        False,
        title="Review the storyboard",
        description="Wait after the footage is chosen, so someone can see each scene's clip, "
        "swap it or change its terms before the render (the service only).",
        json_schema_extra=OUTPUT,
    )
    review: bool = Field(
        False,
        title="Review before publishing",
        description="Render, then wait for someone to approve or reject the video before it "
        "is published (the service only: the run waits suspended, holding no worker).",
        json_schema_extra=OUTPUT,
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

    @field_validator("scenes", mode="before")
    @classmethod
    def _scenes_json(cls, v: Any) -> Any:
        return scenes_from_json(v)  # a campaign's cell or a form's text

    @field_validator("music", "voice")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v

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

    @model_validator(mode="after")
    def _topic_or_script(self) -> VideoSpec:
        if self.scenes is not None and not self.scenes:
            self.scenes = None
        if self.scenes and (self.script or self.audio):
            raise ValueError("give scenes or a script (or a narration file), not both")
        if not self.topic and not self.script and not self.audio and not self.scenes:
            raise ValueError("give a topic or a script: both are empty")
        return self

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, both even."""
        short = SHORT_SIDE[self.resolution]
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
        said = " ".join(s.text for s in self.scenes) if self.scenes else None
        text = (self.script or said or self.topic).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF

    def render_options(self) -> Any:
        """What the render takes of this request, at the frame's size (a RenderOptions)."""
        picked = self.model_dump(include=set(RENDER_FIELDS))
        return RenderOptions.model_validate({**picked, "size": self.size})


def _pick(name: str, model: type[BaseModel], fields: tuple[str, ...], **extra: Any) -> Any:
    """A model of some of `model`'s fields, each the same field (type, default, bounds)."""
    picked: dict[str, Any] = {
        n: (model.model_fields[n].annotation, model.model_fields[n]) for n in fields
    }
    return create_model(name, __module__=__name__, **picked, **extra)


# The options the render stage takes: these spec fields, and the frame size they are for.
RENDER_FIELDS = (
    "fps",
    "fit",
    "background",
    "background_color",
    "clip_duration",
    "clip_speed",
    "transition",
    "transition_duration",
    "voice_volume",
    "music_volume",
    "music_fade_out",
    "duck",
    "loudness",
    "tail_s",
    "preset",
    "crf",
    "encoder",
)
RenderOptions = _pick("RenderOptions", VideoSpec, RENDER_FIELDS, size=(tuple[int, int], ...))
