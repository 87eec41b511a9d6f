"""Review before publish: a rendered video waits, suspended, for someone's decision.

The run writes a preview (the video and its subtitles) into its output folder, tells the
catalog it awaits review, and suspends: its worker slot is free while it waits, and the
Prefect UI shows a form with the decision's fields. `POST /tasks/{id}/review` (or that form)
resumes it; the run starts again from the top, every stage cached, and gets the decision
here. Approved: published as usual. Rejected: the preview goes and nothing is published.
A decision that never comes ends the run after MPT_REVIEW_TIMEOUT_H hours (expired).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment
from pydantic import Field

from blocks.errors import BadInput
from blocks.settings import get_settings
from tasks.files import copy_atomic

log = logging.getLogger(__name__)
PREVIEW = "preview"


class ReviewDecision(RunInput):
    """What a reviewer decides."""

    approved: bool = Field(description="Publish the video (true) or drop it (false).")
    note: str = Field("", description="Why, for the record.", max_length=2000)


def require_service() -> None:
    """Only a run of a deployment can suspend; anywhere else review has no one to wait for."""
    if not deployment.get_id():
        raise BadInput("review needs the service: create the video through the API or a batch")


def write_preview(videos: list[Path], subtitles_srt: Path, out_dir: Path) -> dict[str, Path]:
    """The rendered files a reviewer looks at, in the run's output folder."""
    preview = out_dir / PREVIEW
    files = {}
    for i, video in enumerate(videos):
        name = "video.mp4" if i == 0 else f"video-{i + 1}.mp4"
        files["video" if i == 0 else f"video_{i + 1}"] = copy_atomic(video, preview / name)
    files["srt"] = copy_atomic(subtitles_srt, preview / "subtitles.srt")
    return files


def wait_for_decision(files: dict[str, Path]) -> ReviewDecision:
    """Suspend the run until a decision comes (the first time); return it (on resume)."""
    hours = get_settings().review_timeout_h
    log.info("awaiting review of %s (expires in %g h)", files["video"], hours)
    decision = suspend_flow_run(
        wait_for_input=ReviewDecision.with_initial_data(
            description=(
                "**Review this video before it is published.**\n\n"
                + "".join(f"- `{p}`\n" for p in files.values())
                + "\nApprove to publish it, or reject it with a note."
            ),
            approved=True,
        ),
        timeout=round(hours * 3600),
        key="review",
    )
    assert decision is not None  # with wait_for_input, a resume always carries it
    verdict = "approved" if decision.approved else "rejected"
    log.info("review: %s%s", verdict, f" ({decision.note})" if decision.note else "")
    return decision


def drop_preview(out_dir: Path) -> None:
    shutil.rmtree(out_dir / PREVIEW, ignore_errors=True)
