"""Progress within a long stage (the encode), reported to whoever runs the stage.

The flow's progress tracker registers itself here for the run; a stage reports fractions
and knows nothing of artifacts, the catalog or the CLI's bar.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

Reporter = Callable[[str, float], None]  # (stage, fraction of it done)
_reporter: ContextVar[Reporter | None] = ContextVar("mpt_stage_progress", default=None)


def report_to(reporter: Reporter | None) -> None:
    """Send this context's stage fractions to `reporter` (None: nowhere)."""
    _reporter.set(reporter)


def report_fraction(stage: str, fraction: float) -> None:
    """How far a long stage has got: the artifact and the CLI bar move with it."""
    reporter = _reporter.get()
    if reporter is not None:
        reporter(stage, fraction)
