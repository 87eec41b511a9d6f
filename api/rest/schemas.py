"""What the facade accepts and answers: pydantic models at the HTTP boundary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.signing import Signer
from blocks.catalog import Kind, RunState, VideoRow
from blocks.settings import get_settings
from flows.campaign import NAME_PATTERN
from flows.spec import VideoSpec

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


def readable_roots() -> list[Path]:
    """Folders a request may name files in: nothing else on the server can be read."""
    s = get_settings()
    roots = (s.output_root, s.music_dir, s.uploads_dir, *s.api.input_roots)
    return [p.expanduser().resolve() for p in roots]


def inside_roots(value: str, roots: list[Path] | tuple[Path, ...]) -> bool:
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
            if isinstance(value, str) and value and not inside_roots(value, roots):
                raise ValueError(f"{name} must be a path inside the service's storage roots")
        music = data.get("music")
        music = music.strip() if isinstance(music, str) else "none"
        if music not in ("none", "random", "") and not inside_roots(music, roots):
            raise ValueError("music must be 'none', 'random' or a file in the music folder")
        subtitles = data.get("subtitles")
        font = subtitles.get("font") if isinstance(subtitles, dict) else None
        is_path = isinstance(font, str) and ("/" in font or "\\" in font)
        if is_path and not inside_roots(font, (*roots, *SYSTEM_FONT_DIRS)):
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
        description="When done: stream and download URLs of each file, by name; while "
        "awaiting review, those of the preview."
    )
    signed_urls: dict[str, str] = Field(
        default_factory=dict,
        description="The same files as short-lived signed URLs that need no key (for a "
        "browser's <video>, or to hand a file on); absolute with MPT_PUBLIC_API_URL.",
    )
    review_note: str | None = Field(None, description="What the reviewer said, if reviewed.")
    batch_id: UUID | None = Field(None, description="The batch the task is a row of.")
    spec: dict[str, Any] = Field(default_factory=dict, description="What was asked for.")

    @classmethod
    def from_row(
        cls,
        row: VideoRow,
        prefix: str,
        state: RunState | None = None,
        signer: Signer | None = None,
        public: str = "",
    ) -> TaskOut:
        urls: dict[str, str] = {}
        signed: dict[str, str] = {}
        if row.state in ("completed", "awaiting_review"):
            for name, rel in row.paths.items():
                if not Path(rel).is_absolute():
                    urls[name] = f"{prefix}/stream/{rel}"
                    urls[f"{name}_download"] = f"{prefix}/download/{rel}"
                    if signer is not None:
                        signed[name] = signer.url(public + prefix, rel)
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
            signed_urls=signed,
            review_note=row.review_note,
            batch_id=row.batch_id,
            spec=row.spec,
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


class ReviewIn(BaseModel):
    """A reviewer's decision on a task awaiting review."""

    model_config = ConfigDict(extra="forbid")

    approved: bool = Field(description="Publish the video (true) or drop it (false).")
    note: str = Field("", description="Why, for the record.", max_length=2000)


class BatchIn(BaseModel):
    """Rows sent as JSON: each a partial VideoSpec, `defaults` for what a row leaves out."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]] = Field(min_length=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    name: str = Field("batch", pattern=NAME_PATTERN)
    skip_invalid: bool = Field(False, description="Make the good rows, report the bad ones.")


class BatchItemOut(BaseModel):
    row: int
    task_id: UUID | None
    state: str = Field(description="The task's state, or 'invalid' for a refused row.")
    progress: float | None = None
    topic: str | None = None
    urls: dict[str, str] = Field(default_factory=dict)
    signed_urls: dict[str, str] = Field(default_factory=dict)
    error: str | None = None


class BatchCreated(BaseModel):
    batch_id: UUID
    items: list[BatchItemOut]


class BatchOut(BaseModel):
    batch_id: UUID
    name: str
    created_at: datetime
    cancelled: bool
    total: int
    counts: dict[str, int] = Field(description="Rows by state.")
    items: list[BatchItemOut]


class BatchPage(BaseModel):
    items: list[BatchOut]
    total: int
    limit: int
    offset: int


class ScheduleIn(BaseModel):
    """When a campaign runs: exactly one of cron, interval_s or rrule."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(None, max_length=200, examples=["0 9 * * 1"])
    interval_s: int | None = Field(None, ge=60, le=366 * 86400)
    rrule: str | None = Field(None, max_length=2000)
    timezone: str = Field("UTC", max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleIn:
        given = [v for v in (self.cron, self.interval_s, self.rrule) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, interval_s or rrule")
        return self


class CampaignIn(BaseModel):
    """A campaign that runs on a schedule: its rows (or a file of them), defaults, when."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    rows: list[dict[str, Any]] | None = Field(None, min_length=1)
    file: str | None = Field(
        None, description="A CSV, Parquet or JSON Lines file in an input root."
    )
    defaults: dict[str, Any] = Field(default_factory=dict)
    schedule: ScheduleIn
    active: bool = True
    skip_invalid: bool = False

    @model_validator(mode="after")
    def _rows_or_file(self) -> CampaignIn:
        if (self.rows is None) == (self.file is None):
            raise ValueError("give the campaign's rows or a file of them, not both")
        return self


class CampaignPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool | None = None
    schedule: ScheduleIn | None = None


class CampaignOut(BaseModel):
    name: str
    owner: str
    active: bool
    schedule: dict[str, Any]
    rows: int
    defaults: dict[str, Any]
    created_at: datetime
    deployment: str = "batch/batch"


class RowProblemOut(BaseModel):
    row: int
    field: str | None
    message: str


class BatchCheck(BaseModel):
    """What POST /batches would make of these rows, without making anything."""

    rows: int
    valid: int
    problems: list[RowProblemOut]


class UploadOut(BaseModel):
    """An uploaded file, stored under the owner's upload folder: put `path` in a spec."""

    path: str
    kind: Literal["video", "image", "audio"]
    bytes: int
    duration_s: float
    width: int
    height: int


class WhoAmI(BaseModel):
    owner: str
    role: str
    key_id: str


class ServiceConfig(BaseModel):
    """What a client needs to build its forms: the spec's schema, the limits, the voices'
    engines, and whether topics can be written (an LLM is configured)."""

    llm_configured: bool
    limits: dict[str, float]
    spec_schema: dict[str, Any]
