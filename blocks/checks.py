"""Calling each configured network provider once: did it answer, how fast, and if not why.

`mpt providers check` prints it as a table; the facade's `GET /providers` (the web UI's
settings page) returns it.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from blocks.calls import classify
from blocks.errors import BadInput


class ProviderCheck(BaseModel):
    provider: str
    kind: str  # "llm" or "materials"
    answered: bool
    seconds: float
    detail: str


def check_providers() -> list[ProviderCheck]:
    """One call to every LLM and stock-footage provider in the configured chains; a saved
    block (`block:NAME`) is reported under that name."""
    from blocks.llm import SYSTEM, provider_block
    from blocks.settings import get_settings
    from blocks.stock import STOCK_PROVIDERS, stock_source

    settings = get_settings()
    checks = [(name, "llm") for name in settings.llm.providers] + [
        (name, "materials") for name in settings.materials.providers if name != "local"
    ]
    results = []
    for name, kind in checks:
        start = time.perf_counter()
        block = None
        try:
            if kind == "llm":
                block = provider_block(name)
                reply = block.complete(SYSTEM, 'Reply with {"ok": true}')
                detail = f"{len(reply)} characters"
            else:
                block = stock_source(name)
                if block is None and name not in STOCK_PROVIDERS:
                    raise BadInput(f"unknown stock footage source '{name}'")
                if block is None:
                    raise BadInput(f"no key: set MPT_{name.upper()}__API_KEY")
                detail = f"{len(block.search('nature', 'portrait', (1080, 1920)))} clips"
            ok = True
        except BadInput as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            ok, detail = False, str(classify(exc))
            secret = getattr(block, "api_key", None)
            if secret is not None and secret.get_secret_value():
                detail = detail.replace(secret.get_secret_value(), "***")
        results.append(
            ProviderCheck(
                provider=name,
                kind=kind,
                answered=ok,
                seconds=round(time.perf_counter() - start, 2),
                detail=detail,
            )
        )
    return results
