"""Fixtures for the broker's internal tests: a real core, no HTTP.

``core`` (and ``flow``) run every test that uses them against both stores — a SQLite file and a PostgreSQL
database of the test's own — so the service-level tests double as the backends' shared conformance suite
(with ``tests/store``). A test about SQLite itself pins ``backend`` to ``sqlite``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_flow import Flow, SyncCore, open_core
from support import KEYRING_SECRET


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def core(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[SyncCore]:
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        opened = open_core(None, database_url=url, keyring_secret=KEYRING_SECRET)
    else:
        opened = open_core(tmp_path / "broker.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def flow(core: SyncCore) -> Flow:
    return Flow(core)
