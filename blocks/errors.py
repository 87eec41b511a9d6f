"""The kinds of failure every stage distinguishes.

Retrying is only worth it when the same call could succeed a moment later; a bad input
fails the same way every time, so it must fail at once with a message a user can act on.
"""

from spec.errors import BadInput

__all__ = ["BadInput", "StageError", "TransientError"]


class TransientError(RuntimeError):
    """A fault that may pass (timeout, 429, 5xx, dropped connection): retried with backoff."""


class StageError(RuntimeError):
    """A stage could not do its work for a reason that retrying will not fix."""
