"""What the facade accepts and answers: pydantic models at the HTTP boundary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from blocks.catalog import Kind, RunState, VideoRow
from blocks.settings import get_settings
from flows.spec import VideoSpec

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


def readable_roots() -> list[Path]:
    """Folders a request may name files in: nothing else on the server can be read."""
    s = get_settings()
    return [p.expanduser().resolve() for p in (s.output_root, s.music_dir, *s.api.input_roots)]


def _inside(value: str, roots: list[Path] | tuple[Path, ...]) -> bool:
    try:
        path = Path(value).expanduser()
        if not path.is_absolute():
            return False
        real = path.resolve()  # symlinks followed: a link that points out is outside
    except (OSError, RuntimeError):  # a name the file system refuses, a loop of links
        return False
    return any(real.is_relative_to(root) for root in roots)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class VideoRequest(VideoSpec):
    """A VideoSpec as the service accepts it: within the service's limits, and naming files
    only inside the storage roots (checked before any file is looked at)."""

    @model_validator(mode="before")
    @classmethod
    def _service_limits(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if _has_nul(data):
            # PostgreSQL text cannot hold NUL, and no script or path needs one.
            raise ValueError("the request contains a NUL character (\\u0000)")
        limits = get_settings().api
        topic, script = data.get("topic"), data.get("script")
        if isinstance(topic, str) and len(topic) > limits.max_topic_chars:
            raise ValueError(
                f"topic is {len(topic)} characters; the limit is {limits.max_topic_chars}"
            )
        if isinstance(script, str) and len(script) > limits.max_script_chars:
            raise ValueError(
                f"script is {len(script)} characters; the limit is {limits.max_script_chars}"
            )
        count = data.get("video_count")
        if isinstance(count, int) and count > limits.max_video_count:
            raise ValueError(f"video_count is {count}; the limit is {limits.max_video_count}")
        roots = readable_roots()
        for name in ("audio", "materials_dir"):
            value = data.get(name)
            if isinstance(value, str) and value and not _inside(value, roots):
                raise ValueError(f"{name} must be a path inside the service's storage roots")
        music = data.get("music")
        music = music.strip() if isinstance(music, str) else "none"
        if music not in ("none", "random", "") and not _inside(music, roots):
            raise ValueError("music must be 'none', 'random' or a file in the music folder")
        subtitles = data.get("subtitles")
        font = subtitles.get("font") if isinstance(subtitles, dict) else None
        is_path = isinstance(font, str) and ("/" in font or "\\" in font)
        if is_path and not _inside(font, (*roots, *SYSTEM_FONT_DIRS)):
            raise ValueError("subtitles.font must be a family name or an installed font file")
        return data


class TaskCreated(BaseModel):
    task_id: UUID
    status: RunState


class TaskOut(BaseModel):
    task_id: UUID
    kind: Kind
    state: RunState
    progress: float = Field(description="0 to 100.")
    stage: str | None = Field(description="The stage running now (or the last one).")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    urls: dict[str, str] = Field(
        description="When done: stream and download URLs of each file, by name."
    )

    @classmethod
    def from_row(cls, row: VideoRow, prefix: str, state: RunState | None = None) -> TaskOut:
        urls: dict[str, str] = {}
        if row.state == "completed":
            for name, rel in row.paths.items():
                if not Path(rel).is_absolute():
                    urls[name] = f"{prefix}/stream/{rel}"
                    urls[f"{name}_download"] = f"{prefix}/download/{rel}"
        return cls(
            task_id=row.flow_run_id,
            kind=row.kind,
            state=state or row.state,
            progress=row.progress,
            stage=row.stage,
            error=row.error,
            created_at=row.created_at,
            finished_at=row.finished_at,
            duration_s=row.duration_s,
            urls=urls,
        )


class TaskPage(BaseModel):
    items: list[TaskOut]
    total: int
    limit: int
    offset: int


class VoiceOut(BaseModel):
    id: str
    engine: str
    language: str
    offline: bool


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="'ok' or why the check failed, by component.")
    failed: list[str]


class Problem(BaseModel):
    """Every error: one line that says what was wrong."""

    detail: str
