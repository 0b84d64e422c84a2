"""Shared fixtures: a real embedded broker on a loopback port, real SQLite on disk; a real PostgreSQL server.

The broker-backed suites (guard, adapters, pipeline) also share an operator client, an app per test and clients
logged in as it, and a fresh task id; each suite names its app's scopes with an ``app_scopes`` fixture.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from agentwrit_tools import AsyncBroker, Broker

pytest.register_assert_rewrite("support")

_names = itertools.count()


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


@pytest.fixture(scope="session")
def operator(broker: Any) -> Iterator[Broker]:
    """Admin client for audit queries and validation; one login for the session (admin auth is rate-limited)."""
    from agentwrit_tools import Broker

    with Broker(broker.url, admin_secret=broker.admin_secret) as client:
        yield client


@pytest.fixture
def app(request: pytest.FixtureRequest, broker: Any, app_scopes: list[str]) -> Any:
    """An app of its own per test (app logins are rate-limited per client_id), named after the test's suite."""
    return broker.create_app(f"{request.path.parent.name}-{next(_names)}-{secrets.token_hex(3)}", app_scopes)


@pytest.fixture
def client(broker: Any, app: Any) -> Iterator[Broker]:
    from agentwrit_tools import Broker

    with Broker(broker.url, app.client_id, app.client_secret) as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(broker: Any, app: Any) -> AsyncIterator[AsyncBroker]:
    from agentwrit_tools import AsyncBroker

    async with AsyncBroker(broker.url, app.client_id, app.client_secret) as async_client:
        yield async_client


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL for the session: ``AGENTWRIT_TEST_DATABASE_URL``'s, else one from the ``pgserver`` wheel
    (see ``benchmarks/_postgres.py``). Never skipped: the PostgreSQL backend is tested on every machine."""
    from benchmarks._postgres import LocalPostgres

    with LocalPostgres(fast=True) as server:
        yield server


@pytest.fixture
def postgres_url(postgres: Any) -> Iterator[str]:
    """The URL of a fresh, empty database of the test's own (dropped afterwards)."""
    with postgres.database("test") as url:
        yield url


@pytest.fixture
def task_id() -> str:
    """A task id no other test uses, so the audit log can be queried per test."""
    return f"task-{secrets.token_hex(6)}"
