"""Fixtures for the broker contract suite: a raw-wire speaker bound to a running embedded broker."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._wire import Wire, wire_for


@pytest.fixture(scope="session")
def wire(broker: Any) -> Iterator[Wire]:
    """The shared session broker (extensions and rate limits on). Tests use their own apps, agents and tasks."""
    with wire_for(broker) as w:
        yield w


@pytest.fixture
def fresh_wire(fresh_broker: Any) -> Iterator[Wire]:
    """A broker of the test's own (own database), for counting and for draining rate-limit buckets."""
    with wire_for(fresh_broker) as w:
        yield w


StartBroker = Callable[..., contextlib.AbstractContextManager[Wire]]


@pytest.fixture
def start_broker(tmp_path: Path) -> StartBroker:
    """Start an embedded broker with options (``extensions=False``, ``rate_limits=False``, a given db path)."""

    @contextlib.contextmanager
    def start(**options: Any) -> Iterator[Wire]:
        from agentwrit_tools.broker import EmbeddedBroker

        options.setdefault("db_path", tmp_path / "broker.db")
        with EmbeddedBroker(**options) as running, wire_for(running) as w:
            yield w

    return start
