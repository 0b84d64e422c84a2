"""Fixtures for the guard suite: the shared ones of ``tests/conftest.py`` with this suite's app scopes.

The app's ceiling (``read:records:*``, ``write:notes:*``) covers every task ceiling used here, so any denial
seen in these tests comes from the task ceiling — the guard's check or the launcher's ``allowed_scope`` — never
from the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from agentwrit_tools import Broker


@pytest.fixture(scope="session")
def app_scopes() -> list[str]:
    return ["read:records:*", "write:notes:*"]


@pytest.fixture(scope="session", params=["extensions", "reference"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Every guard test runs twice: against the broker with our extensions, and with them off — the reference
    contract, where the fast path falls back (remote verification, launch tokens it cannot revoke)."""
    from agentwrit_tools.broker import EmbeddedBroker

    db = Path(tmp_path_factory.mktemp(f"guard-{request.param}")) / "broker.db"
    with EmbeddedBroker(db_path=db, extensions=request.param == "extensions") as running:
        yield running


@pytest.fixture(scope="session")
def operator(broker: Any) -> Iterator[Broker]:
    """This suite's own operator client, on this suite's brokers (the shared one is bound to the shared broker)."""
    from agentwrit_tools import Broker

    with Broker(broker.url, admin_secret=broker.admin_secret) as client:
        yield client
