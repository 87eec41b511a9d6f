"""A real browser for UI tests: Debian's chromium driven by Playwright (nothing downloaded)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest


def chromium_path() -> str:
    path = os.environ.get("MPT_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("chromium is needed for browser tests (deployments/install-test-deps.sh)")
    return path


@contextlib.contextmanager
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
