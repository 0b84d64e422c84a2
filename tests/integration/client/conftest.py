"""Fixtures for the client suite: the real embedded broker over loopback HTTP, with extensions on and off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from client_helpers import new_app
from support import broker_extensions_on_or_off


@pytest.fixture(scope="session", params=[True, False], ids=["extensions-on", "extensions-off"])
def any_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running broker, once with every extension and once as a reference broker would be (JWKS/feed 404)."""
    yield from broker_extensions_on_or_off(request, tmp_path_factory)


@pytest.fixture
def extensions(any_broker: Any) -> bool:
    return bool(any_broker.settings.extensions)


@pytest.fixture
def app(any_broker: Any) -> Any:
    return new_app(any_broker)
