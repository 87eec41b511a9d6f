"""Scenes: a request may give its video as a list of scenes instead of a script, and a run's
storyboard (the footage chosen scene by scene) is seen and changed in these words."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A pause written in a script: `[pause]` (PAUSE_DEFAULT_S) or `[pause: 1.5s]`, `[pause: 500ms]`.
PAUSE_DEFAULT_S = 1.0
PAUSE_MAX_S = 10.0


class SceneSplit(StrEnum):
    """Where a script is cut into scenes (each scene's footage is chosen for its words)."""

    sentence = "sentence"
    paragraph = "paragraph"
    line = "line"


class SceneIn(BaseModel):
    """One scene of a request: what is said, and optionally its search terms, a clip or a
    still of your own, and how long it lasts at least."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=5000, description="What is said in the scene.")
    terms: list[str] = Field(
        default_factory=list,
        max_length=3,
        description="Up to 3 search queries for its footage; found from the text if empty.",
    )
    clip: Path | None = Field(None, description="A video file of your own for this scene.")
    image: Path | None = Field(
        None, description="A still of your own, shown with slow seeded motion."
    )
    duration: float | None = Field(
        None, ge=0.5, le=120, description="At least this long (s): silence after its words."
    )

    @field_validator("text")
    @classmethod
    def _has_words(cls, v: str) -> str:
        if not any(ch.isalnum() for ch in v):
            raise ValueError("a scene's text has no words to speak")
        return v.strip()

    @field_validator("terms")
    @classmethod
    def _terms(cls, v: list[str]) -> list[str]:
        terms = [" ".join(t.split()) for t in v]
        if any(not t or len(t) > 100 for t in terms):
            raise ValueError("each term is 1 to 100 characters")
        return terms

    @model_validator(mode="after")
    def _one_picture(self) -> SceneIn:
        if self.clip is not None and self.image is not None:
            raise ValueError("give a scene a clip or an image, not both")
        return self


def scenes_from_json(value: Any) -> Any:
    """A list given as JSON text (a campaign cell, a form field) as the list it holds."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"scenes: not JSON ({exc})") from None
    return value


class StoryboardClip(BaseModel):
    """A clip a scene shows or could show."""

    name: str = Field(description="The clip's file name (or 'drawn' for a background).")
    source: str = Field(description="local, user, pexels, pixabay, procedural, ...")
    kind: str = Field(description="video or image")
    term: str | None = None
    author: str | None = None
    page_url: str | None = None
    license_url: str | None = None
    thumbnail: str | None = Field(None, description="A signed URL of a still of it.")


class StoryboardScene(BaseModel):
    index: int = Field(description="0 for the first scene.")
    start_s: float
    end_s: float
    text: str
    terms: list[str]
    clip: StoryboardClip = Field(description="What the scene shows (its first cut).")
    reason: str = Field(description="Why this clip was chosen.")
    candidates: list[StoryboardClip] = Field(
        description="Other clips found for the scene; `candidate` in an edit picks one."
    )


class Storyboard(BaseModel):
    """A run's scenes and their footage (awaiting review, or as rendered)."""

    run_id: str
    editable: bool = Field(description="The run waits for this storyboard to be reviewed.")
    scenes: list[StoryboardScene]


class SceneEdit(BaseModel):
    """A change to one scene: another candidate, a clip of your own (an upload's path), or
    new search terms (footage is searched again for it)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="The scene's index.")
    candidate: int | None = Field(None, ge=0, description="A candidate's position in its list.")
    clip: Path | None = Field(None, description="A file of your own (an upload's path).")
    terms: list[str] | None = Field(None, min_length=1, max_length=3)


class StoryboardEdit(BaseModel):
    """What a reviewer changes before the render; the run then goes on."""

    model_config = ConfigDict(extra="forbid")

    scenes: list[SceneEdit] = Field(default_factory=list, max_length=500)
