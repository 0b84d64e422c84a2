"""The backends the conformance suite runs against, and how to make an (unopened) store of each."""

from __future__ import annotations

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
