"""A run (one request made into a video, a narration, or subtitles) and its states: the words
the service, the web UI, the MCP server and the CLI use, and their one mapping from Prefect's.

The REST paths keep v1's `/tasks` and `task_id`; everything else calls it a run.
"""

from __future__ import annotations

from typing import Literal, get_args

Kind = Literal["video", "audio", "subtitles"]
RunState = Literal[
    "queued",
    "running",
    "awaiting_review",  # rendered, waiting for a reviewer's decision (the run is suspended)
    "completed",
    "failed",
    "cancelled",
    "rejected",  # a reviewer rejected it: nothing was published
    "expired",  # no decision came in MPT_REVIEW_TIMEOUT_H hours
]
RUN_STATES: tuple[str, ...] = get_args(RunState)

# A run in one of these never changes state again.
ENDED: frozenset[str] = frozenset({"completed", "failed", "cancelled", "rejected", "expired"})
# Nothing more happens without someone: ended, or waiting for a reviewer. Who follows a run
# (the MCP server's wait, the web UI, a batch) stops following here.
SETTLED: frozenset[str] = ENDED | {"awaiting_review"}

# What Prefect says of a run that stayed paused (suspended) past its timeout.
PAUSE_EXPIRED = "The flow was paused and never resumed."

# Prefect's state types (their names, so this module needs no Prefect) in our words.
_OF_PREFECT: dict[str, RunState] = {
    "SCHEDULED": "queued",
    "PENDING": "queued",
    "PAUSED": "awaiting_review",  # our runs pause (suspend) only to await review
    "RUNNING": "running",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CRASHED": "failed",
    "CANCELLING": "cancelled",
    "CANCELLED": "cancelled",
}


def state_of(prefect_type: str | None, message: str | None = None) -> RunState:
    """Our word for a Prefect state type (`StateType.value`, e.g. "COMPLETED")."""
    ours = _OF_PREFECT.get(prefect_type or "", "queued")
    if ours == "failed" and message and PAUSE_EXPIRED in message:
        return "expired"  # no review decision came in time
    return ours


# The stages a run goes through, in order (the CLI's progress rows, the web UI's list).
STAGES: tuple[str, ...] = (
    "script",
    "terms",
    "narration",
    "materials",
    "subtitles",
    "render",
    "publish",
)
PARTIAL_STAGES: dict[str, tuple[str, ...]] = {
    "audio": ("script", "narration", "publish"),
    "subtitles": ("script", "narration", "subtitles", "publish"),
}
UPSCALE_AFTER = "materials"  # with `upscale` set, the upscale stage comes next


def stages_of(kind: Kind = "video", upscale: str = "none") -> list[str]:
    """The stages a run of this kind (and `upscale` choice) goes through, in order."""
    if kind != "video":
        return list(PARTIAL_STAGES[kind])
    if upscale == "none":
        return list(STAGES)
    at = STAGES.index(UPSCALE_AFTER) + 1
    return [*STAGES[:at], "upscale", *STAGES[at:]]
