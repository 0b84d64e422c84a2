"""Fixtures for the guard suite: the real embedded broker over loopback, an app per test, an operator client.

The app's ceiling (``read:records:*``, ``write:notes:*``) covers every task ceiling used here, so any denial
seen in these tests comes from the task ceiling — the guard's check or the launcher's ``allowed_scope`` — never
from the app.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from agentwrit_tools import Broker

APP_SCOPES = ["read:records:*", "write:notes:*"]
_names = itertools.count()


@pytest.fixture(scope="session")
def operator(broker: Any) -> Iterator[Broker]:
    """Admin client for audit queries and validation; one login for the whole session (admin auth is rate-limited)."""
    with Broker(broker.url, admin_secret=broker.admin_secret) as client:
        yield client


@pytest.fixture
def app(broker: Any) -> Any:
    """An app of its own per test: app logins are rate-limited per client_id."""
    return broker.create_app(f"guard-{next(_names)}-{secrets.token_hex(3)}", APP_SCOPES)


@pytest.fixture
def client(broker: Any, app: Any) -> Iterator[Broker]:
    with Broker(broker.url, app.client_id, app.client_secret) as sync_client:
        yield sync_client


@pytest.fixture
def task_id() -> str:
    """A task id no other test uses, so the audit log can be queried per test."""
    return f"task-{secrets.token_hex(6)}"
