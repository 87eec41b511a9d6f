"""Stage progress: a Prefect progress artifact for operators, callbacks for the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

Listener = Callable[[str, str, float], None]  # (stage, state, seconds)
_listeners: ContextVar[tuple[Listener, ...]] = ContextVar("mpt_progress_listeners", default=())


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


class Progress:
    """Tracks finished stages of one run and mirrors them to the run's progress artifact."""

    def __init__(self, stages: list[str]) -> None:
        self.stages = stages
        self.done = 0
        self.artifact_id: UUID | None = create_progress_artifact(
            progress=0.0, key="video-progress", description="Stages finished, in %"
        )

    def started(self, stage: str) -> None:
        for listener in _listeners.get():
            listener(stage, "Running", 0.0)

    def finished(self, stage: str, state: str, seconds: float) -> None:
        self.done += 1
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, 100.0 * self.done / len(self.stages))
        for listener in _listeners.get():
            listener(stage, state, seconds)
