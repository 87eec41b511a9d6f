"""What the REST facade accepts and answers, besides the video spec: one definition that the
facade serves and its client (`api.client`) reads. v1's JSON names are kept (`task_id`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spec.campaign import NAME_PATTERN
from spec.runs import Kind, RunState


class Problem(BaseModel):
    """Every error: one line that says what was wrong."""

    detail: str


class RunCreated(BaseModel):
    task_id: UUID = Field(description="The run's id (its Prefect flow run id).")
    status: RunState


class RunOut(BaseModel):
    """A run: its state and, once done, its files."""

    task_id: UUID = Field(description="The run's id (its Prefect flow run id).")
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
    batch_id: UUID | None = Field(None, description="The batch the run is a row of.")
    spec: dict[str, Any] = Field(default_factory=dict, description="What was asked for.")


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class VoiceOut(BaseModel):
    id: str = Field(description="What to pass as `voice`: ENGINE:NAME.")
    engine: str
    language: str
    offline: bool


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(description="'ok' or why the check failed, by component.")
    failed: list[str]


class ReviewIn(BaseModel):
    """A reviewer's decision on a run awaiting review."""

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
    state: str = Field(description="The run's state, or 'invalid' for a refused row.")
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
    """What a client needs to build its forms: the spec's schema, the limits, and whether
    topics can be written (an LLM is configured)."""

    llm_configured: bool
    limits: dict[str, float]
    spec_schema: dict[str, Any]


class ProviderCheckOut(BaseModel):
    """One configured network provider, called once."""

    provider: str
    kind: str = Field(description="'llm' or 'materials'.")
    answered: bool
    seconds: float
    detail: str
