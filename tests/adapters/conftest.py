"""Fixtures for the adapter suite: the real embedded broker over loopback, an app per test, a live stand-in model
and real ``openai`` clients pointed at it.

The app's ceiling covers every task ceiling used here, so a denial in these tests comes from the task (the
guard's check or the broker's launch-token ceiling) or from the scope template — never from the app.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from adapter_support import APP_SCOPES, RULES

from agentwrit_tools import AsyncBroker, Broker
from agentwrit_tools.offline import StandInModel

openai = pytest.importorskip("openai")

_names = itertools.count()


@pytest.fixture(scope="session")
def operator(broker: Any) -> Iterator[Broker]:
    """Admin client for audit queries and validation (one login for the session: admin auth is rate-limited)."""
    with Broker(broker.url, admin_secret=broker.admin_secret) as client:
        yield client


@pytest.fixture
def app(broker: Any) -> Any:
    """An app of its own per test: app logins are rate-limited per client_id."""
    return broker.create_app(f"adapters-{next(_names)}-{secrets.token_hex(3)}", APP_SCOPES)


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


@pytest.fixture(scope="session")
def stand_in() -> Iterator[StandInModel]:
    with StandInModel(RULES) as model:
        yield model


@pytest.fixture
def model(stand_in: StandInModel) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model_client:
        yield model_client


@pytest.fixture
async def amodel(stand_in: StandInModel) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model_client:
        yield model_client
