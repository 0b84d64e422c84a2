"""The store conformance suite: every test runs against both backends, SQLite and PostgreSQL, unchanged.

A backend is conformant when these pass and the broker's service tests (``tests/unit/broker``, also run against
both) pass. A new backend joins by adding its name to ``store_support.BACKENDS`` and a branch in ``make``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from store_support import BACKENDS, make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    opened = make(backend, request, tmp_path)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
