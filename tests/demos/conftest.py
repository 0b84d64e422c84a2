"""Fixtures of the demo suites: one real headless Chromium per browser test module, a fresh page per test.

Per module, not per session: Playwright's sync API runs an event loop in the main thread for as long as it is
open, and every async test collected after the browser tests (anyio, asyncio) would find that loop running.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from demo_support import chromium_executable, screenshot


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new page (1280 x 900); its last state is saved as ``test-artifacts/<test name>.png``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    try:
        yield opened
    finally:
        screenshot(opened, re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")[:120])
        context.close()
