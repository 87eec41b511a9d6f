"""The user's-fault error and its one line: every entry point shows bad input the same way."""

from __future__ import annotations

import re
from typing import Any

# Where a validation error says the value came from, which is no part of the field's name.
_LOCATIONS = {"__root__", "body", "query", "path", "header"}


class BadInput(ValueError):
    """The request itself is wrong: never retried; its message is shown to the user as is."""


def first_error(exc: BaseException) -> str:
    """One line for a user from any exception; from a validation error (pydantic's, or
    FastAPI's for a request), its first error as `field: message`."""
    from pydantic import ValidationError

    errors: Any = None
    if isinstance(exc, ValidationError) or type(exc).__name__ == "RequestValidationError":
        errors = getattr(exc, "errors")()  # noqa: B009 - FastAPI's has the same shape
    if errors:
        err = errors[0]
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in _LOCATIONS)
        msg = re.sub(r"^(Value|Assertion) error, ", "", str(err.get("msg", exc)))
        return f"{loc}: {msg}" if loc else msg
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
