"""Stage progress: a Prefect progress artifact for operators, callbacks for the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from tasks.progress import report_to

Listener = Callable[[str, str, float], None]  # (stage, state, seconds)
Sink = Callable[[float, str | None], None]  # (percent, stage now running or None)
_listeners: ContextVar[tuple[Listener, ...]] = ContextVar("mpt_progress_listeners", default=())


_row: ContextVar[int | None] = ContextVar("mpt_batch_row", default=None)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


@contextlib.contextmanager
def row_scope(row: int) -> Iterator[None]:
    """Events inside come from this row of a batch (`current_row` tells listeners which)."""
    token = _row.set(row)
    try:
        yield
    finally:
        _row.reset(token)


def current_row() -> int | None:
    return _row.get()


def notify(stage: str, state: str, seconds: float) -> None:
    """Tell the listeners of this context (the CLI) something outside a video's stages."""
    for listener in _listeners.get():
        listener(stage, state, seconds)


class Progress:
    """Tracks finished stages of one run and mirrors them to the run's progress artifact."""

    def __init__(self, stages: list[str], sink: Sink | None = None) -> None:
        self.stages = stages
        self.sink = sink  # the service catalog's row for this run, when there is one
        self.done = 0
        self.artifact_id: UUID | None = create_progress_artifact(
            progress=0.0, key="video-progress", description="Stages finished, in %"
        )
        self._last_sent = 0.0
        # A stage run several times (render, once per video) reports its part of the whole.
        self.part, self.parts = 0, 1
        report_to(self.partial)

    def started(self, stage: str) -> None:
        if self.sink is not None:
            self.sink(100.0 * self.done / len(self.stages), stage)
        for listener in _listeners.get():
            listener(stage, "Running", 0.0)

    def finished(self, stage: str, state: str, seconds: float) -> None:
        self.done += 1
        self._send(100.0 * self.done / len(self.stages))
        for listener in _listeners.get():
            listener(stage, state, seconds)

    def partial(self, stage: str, fraction: float) -> None:
        fraction = (self.part + fraction) / self.parts
        self._send(100.0 * (self.done + fraction) / len(self.stages), throttle=True)
        for listener in _listeners.get():
            listener(stage, "Progress", fraction)

    def _send(self, percent: float, throttle: bool = False) -> None:
        # The encode reports twice a second; the API needs no more than a point at a time.
        if self.artifact_id is None or (throttle and percent - self._last_sent < 1.0):
            return
        self._last_sent = percent
        update_progress_artifact(self.artifact_id, round(percent, 1))
        if self.sink is not None:
            self.sink(percent, None)
