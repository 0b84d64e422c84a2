"""Fixtures for the pipeline suite: the real embedded broker over loopback, an app per test, an operator client.

The app's ceiling covers every task ceiling used here, so a refusal in these tests comes from the pipeline (its
own check, or the broker refusing a registration under a stage's launcher or a delegation from a stage's token)
or from a stage's guard task — never from the app.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pipeline_support import APP_SCOPES

from agentwrit_tools import AsyncBroker, Broker

_names = itertools.count()


@pytest.fixture(scope="session")
def operator(broker: Any) -> Iterator[Broker]:
    """Admin client for audit queries and validation; one login for the session (admin auth is rate-limited)."""
    with Broker(broker.url, admin_secret=broker.admin_secret) as client:
        yield client


@pytest.fixture
def app(broker: Any) -> Any:
    """An app of its own per test: app logins are rate-limited per client_id."""
    return broker.create_app(f"pipeline-{next(_names)}-{secrets.token_hex(3)}", APP_SCOPES)


@pytest.fixture
def client(broker: Any, app: Any) -> Iterator[Broker]:
    with Broker(broker.url, app.client_id, app.client_secret) as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(broker: Any, app: Any) -> AsyncIterator[AsyncBroker]:
    async with AsyncBroker(broker.url, app.client_id, app.client_secret) as async_client:
        yield async_client


@pytest.fixture
def task_id() -> str:
    """A task id no other test uses, so the audit log can be queried per test."""
    return f"task-{secrets.token_hex(6)}"
