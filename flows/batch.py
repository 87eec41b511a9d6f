"""The batch flow: a campaign's rows, each made by a video flow run of its own.

Run by a deployment (the service, a schedule), the rows fan out to the `video` deployment, so
every worker of the `cpu` pool takes rows; the batch's own run lives on a pool of its own
(`batch`), so waiting for its rows never takes the slot a row needs. Run locally (`mpt
batch`), the rows run in this process, `concurrency` at a time. Either way one failing row
never stops the others, and a rerun of the same campaign makes nothing twice: finished
rows' stages are cached, failed rows are made again.
"""

from __future__ import annotations

import contextvars
import csv
import io
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import deployment, flow_run
from pydantic import BaseModel

from blocks.errors import BadInput
from blocks.settings import get_settings
from blocks.storage import result_storage
from flows.preflight import preflight
from flows.progress import notify, row_scope
from flows.runs import NewRun, create_sync, info_of, run_here
from flows.video import Rejected, VideoResult
from spec.campaign import Campaign, RowProblem, problems_line, validate_rows
from spec.errors import first_error
from spec.runs import ENDED, SETTLED
from spec.video import VideoSpec
from tasks.files import write_text_atomic

log = logging.getLogger(__name__)
VIDEO_DEPLOYMENT = "video/video"
POLL_S = 2.0
# A row in one of these states is done for the batch (awaiting review counts: its decision
# completes it later, outside the batch).
DONE = SETTLED | {"invalid"}
FAILED = (ENDED - {"completed", "rejected"}) | {"invalid"}


class RowResult(BaseModel):
    row: int
    topic: str
    state: str
    task_id: str | None = None
    video: str | None = None
    duration_s: float | None = None
    seconds: float | None = None
    error: str | None = None


class BatchReport(BaseModel):
    """What a batch made, row by row; written as report.csv and report.json."""

    name: str
    out_dir: str
    flow_run_id: str | None
    rows: list[RowResult]

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.state] = out.get(r.state, 0) + 1
        return out

    @property
    def failures(self) -> list[RowResult]:
        return [r for r in self.rows if r.state in FAILED]


def topic_of(row: dict[str, Any]) -> str:
    text = str(row.get("topic") or row.get("script") or "")
    return " ".join(text.split())[:60]


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text[:30]).strip("-").lower() or "video"


def row_folder(root: Path, row: int, spec: VideoSpec) -> Path:
    return root / f"{row:03d}-{_slug(spec.topic or spec.script or '')}"


def campaign_root(campaign: Campaign) -> Path:
    """Where a run of the campaign writes: its `out_dir`; for a deployment's run (a schedule,
    the service) <output root>/<name>/<date-time>; locally <output root>/<name>."""
    if campaign.out_dir:
        return Path(campaign.out_dir)
    root = get_settings().output_root / campaign.name
    if deployment.get_id():
        return root / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return root


class _Tracker:
    """The batch's rows as they finish: artifacts for the Prefect UI, the CLI's events, the
    catalog (in the service), and the report files at the end."""

    def __init__(self, campaign: Campaign, root: Path, rows: dict[int, RowResult]) -> None:
        self.campaign, self.root, self.rows = campaign, root, rows
        self.total = len(campaign.rows)
        self.progress_id = create_progress_artifact(
            progress=0.0, key="batch-progress", description="Rows finished, in %"
        )
        self.catalog = _BatchCatalog.open(campaign, self.total)
        for r in rows.values():  # the invalid ones, known from the start
            self.catalog.item(r)
        self._publish()

    def started(self, result: RowResult) -> None:
        self.rows[result.row] = result
        self.catalog.item(result)

    def finished(self, result: RowResult) -> None:
        self.rows[result.row] = result
        self.catalog.item(result)
        log.info(
            "row %d %s%s", result.row, result.state, f": {result.error}" if result.error else ""
        )
        self._publish()

    def _publish(self) -> None:
        done = sum(1 for r in self.rows.values() if r.state in DONE)
        if self.progress_id is not None:
            update_progress_artifact(self.progress_id, round(100.0 * done / self.total, 1))
        create_table_artifact(
            key="batch-rows",
            description=f"Campaign {self.campaign.name}: {done} of {self.total} rows done",
            table=[r.model_dump() for r in sorted(self.rows.values(), key=lambda r: r.row)],
        )

    def report(self) -> BatchReport:
        ordered = sorted(self.rows.values(), key=lambda r: r.row)
        report = BatchReport(
            name=self.campaign.name,
            out_dir=str(self.root),
            flow_run_id=str(flow_run.get_id()) if flow_run.get_id() else None,
            rows=ordered,
        )
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(RowResult.model_fields))
        writer.writeheader()
        writer.writerows(r.model_dump() for r in ordered)
        write_text_atomic(self.root / "report.csv", text.getvalue())
        data = report.model_dump(mode="json") | {"counts": report.counts}
        write_text_atomic(
            self.root / "report.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        )
        self.catalog.close()
        return report


class _BatchCatalog:
    """The batch and its rows in the service's catalog; nothing without a database."""

    def __init__(self, reporter: Any = None) -> None:
        self.reporter = reporter

    @classmethod
    def open(cls, campaign: Campaign, total: int) -> _BatchCatalog:
        url, run_id = get_settings().database_url, flow_run.get_id()
        if not url or not run_id:
            return cls()
        from blocks.batches import BatchReporter

        return cls(BatchReporter(url, UUID(str(run_id)), campaign.name, campaign.owner, total))

    def item(self, result: RowResult) -> None:
        if self.reporter is not None:
            task = UUID(result.task_id) if result.task_id else None
            self.reporter.item(result.row, task, result.topic, result.error)

    def run(self, run_id: UUID, new: NewRun) -> None:
        if self.reporter is not None:
            self.reporter.run(run_id, new.spec, new.out_dir or "")

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter.close()


@flow(name="batch", log_prints=True, validate_parameters=True, result_storage=result_storage())
def batch_flow(campaign: Campaign) -> BatchReport:
    """Make every row of a campaign; rows that fail are reported, the others are made."""
    here = not deployment.get_id()
    valid, problems = checked_rows(campaign, service=not here)
    if problems and not campaign.skip_invalid:
        raise BadInput(problems_line(problems))
    root = campaign_root(campaign)
    root.mkdir(parents=True, exist_ok=True)
    rows = {
        p.row: RowResult(
            row=p.row,
            topic=topic_of(campaign.rows[p.row - 1]),
            state="invalid",
            error=f"{p.field}: {p.message}" if p.field else p.message,
        )
        for p in problems
    }
    for p in problems:
        notify("row", "invalid", float(p.row))
    tracker = _Tracker(campaign, root, rows)
    log.info(
        "campaign %s: %d rows to make (%d invalid) into %s, %s",
        campaign.name,
        len(valid),
        len(problems),
        root,
        "here" if here else f"on the {VIDEO_DEPLOYMENT} deployment",
    )
    if here:
        _run_here(valid, root, campaign.concurrency, tracker)
    else:
        _fan_out(valid, root, campaign, tracker)
    report = tracker.report()
    log.info("campaign %s done: %s", campaign.name, report.counts)
    return report


def checked_rows(
    campaign: Campaign, model: type[VideoSpec] = VideoSpec, service: bool = True
) -> tuple[list[tuple[int, VideoSpec]], list[RowProblem]]:
    """Each row as a spec checked against this machine (flows.preflight), or its problem, in
    row order. `service`: the rows will be deployment runs (which may wait for review)."""
    valid, problems = validate_rows(campaign, model)
    good = []
    for number, spec in valid:
        try:
            good.append((number, preflight(spec, service=service)))
        except BadInput as exc:
            field, _, message = str(exc).partition(": ")
            if field not in spec.model_fields or not message:
                field, message = "", str(exc)
            problems.append(RowProblem(row=number, field=field or None, message=message))
    return good, sorted(problems, key=lambda p: p.row)


def _row_result(number: int, spec: VideoSpec, result: Any, seconds: float) -> RowResult:
    topic = topic_of(spec.model_dump())
    if isinstance(result, Rejected):
        return RowResult(
            row=number,
            topic=topic,
            state="rejected",
            error=result.note or None,
            task_id=result.flow_run_id,
            seconds=round(seconds, 2),
        )
    assert isinstance(result, VideoResult)
    return RowResult(
        row=number,
        topic=topic,
        state="completed",
        task_id=result.flow_run_id,
        video=result.video,
        duration_s=result.duration_s,
        seconds=round(seconds, 2),
    )


def _run_here(
    valid: list[tuple[int, VideoSpec]], root: Path, concurrency: int, tracker: _Tracker
) -> None:
    """Each row a video flow run of this run, `concurrency` at a time, in this process."""

    def make(number: int, spec: VideoSpec) -> RowResult:
        start = time.perf_counter()
        with row_scope(number):
            notify("row", "running", 0.0)
            try:
                out = str(row_folder(root, number, spec))
                result = run_here(spec, out_dir=out, checked=True)
                row = _row_result(number, spec, result, time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - one row's failure is that row's
                row = RowResult(
                    row=number,
                    topic=topic_of(spec.model_dump()),
                    state="failed",
                    error=first_error(exc),
                    seconds=round(time.perf_counter() - start, 2),
                )
            notify("row", row.state, row.seconds or 0.0)
        return row

    with ThreadPoolExecutor(concurrency, thread_name_prefix="row") as pool:
        # Each row runs in a copy of this context: the flow run (so rows are its subflows),
        # the CLI's listeners.
        futures = [
            pool.submit(contextvars.copy_context().run, make, number, spec)
            for number, spec in valid
        ]
        for future in futures:
            tracker.finished(future.result())


def _fan_out(
    valid: list[tuple[int, VideoSpec]], root: Path, campaign: Campaign, tracker: _Tracker
) -> None:
    """Each row a run of the video deployment (any worker of its pool takes it); wait for
    them all. The idempotency key makes a retried batch find its rows instead of making
    them twice."""
    from prefect.client.orchestration import get_client

    parent = flow_run.get_id()
    pending: dict[UUID, tuple[int, VideoSpec, float]] = {}
    for number, spec in valid:
        new = NewRun(
            kind="video",
            spec=spec.model_dump(mode="json"),
            owner=campaign.owner,
            out_dir=str(row_folder(root, number, spec)),
            campaign=campaign.name,
            retry=["batch", str(parent), number],
        )
        run_id = create_sync(new)
        tracker.catalog.run(run_id, new)
        pending[run_id] = (number, spec, time.perf_counter())
        tracker.started(
            RowResult(
                row=number, topic=topic_of(spec.model_dump()), state="queued", task_id=str(run_id)
            )
        )
    with get_client(sync_client=True) as client:
        while pending:
            time.sleep(POLL_S)
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending)))
            )
            for run in runs:
                row = _row_of_run(run, *pending[run.id])
                if row is not None:
                    del pending[run.id]
                    tracker.finished(row)


def _row_of_run(run: Any, number: int, spec: VideoSpec, start: float) -> RowResult | None:
    """The row's result once its run is done for the batch (None while it is not)."""
    info = info_of(run)
    topic = topic_of(spec.model_dump())
    seconds = round(time.perf_counter() - start, 2)
    base = {"row": number, "topic": topic, "task_id": str(run.id), "seconds": seconds}
    if info.paused:  # suspended, awaiting review: done for the batch
        return RowResult(**base, state="awaiting_review")
    if not info.final:
        return None
    if info.state == "completed":
        try:
            return _row_result(number, spec, run.state.result(), seconds)
        except Exception as exc:  # noqa: BLE001 - the run completed; its result is unreadable
            return RowResult(**base, state="completed", error=f"result unreadable: {exc}")
    if info.state == "expired":
        return RowResult(**base, state="expired", error="no review decision in time")
    if info.state == "cancelled":
        return RowResult(**base, state="cancelled", error=info.message)
    error = (info.message or "failed").splitlines()[0][:300]
    return RowResult(**base, state="failed", error=error)
