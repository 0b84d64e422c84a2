"""Fixtures for the broker's internal tests: a real core on a real SQLite file, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_flow import Flow, SyncCore, open_core


@pytest.fixture
def core(tmp_path: Path) -> Iterator[SyncCore]:
    opened = open_core(tmp_path / "broker.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def flow(core: SyncCore) -> Flow:
    return Flow(core)
