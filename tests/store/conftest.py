"""The store conformance suite: every test runs against both backends, SQLite and PostgreSQL, unchanged.

A backend is conformant when these pass and the broker's service tests (``tests/unit/broker``, also run against
both) pass. A new backend joins by adding its name to ``BACKENDS`` and a branch in :func:`make`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("sqlite", "postgresql")


def make(backend: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> Any:
    """An unopened store of ``backend``: a SQLite file, or a PostgreSQL database of the test's own."""
    if backend == "postgresql":
        from agentwrit_tools.broker._store_pg import PostgresStore

        return PostgresStore(request.getfixturevalue("postgres_url"), **options)
    from agentwrit_tools.broker._store_sqlite import SqliteStore

    return SqliteStore(tmp_path / "store.db")


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
