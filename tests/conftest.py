"""Shared fixtures: a real embedded broker on a loopback port, real SQLite on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One broker for the whole session, extensions on. Tests needing isolation start their own."""
    from agentwrit_tools.broker import EmbeddedBroker

    db = Path(tmp_path_factory.mktemp("broker")) / "broker.db"
    with EmbeddedBroker(db_path=db) as running:
        yield running


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[object]:
    """A broker of one's own (own database), for tests that count audit events or restart it."""
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker(db_path=tmp_path / "broker.db") as running:
        yield running
