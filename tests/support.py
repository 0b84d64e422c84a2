"""Shared by the broker-backed suites: a broker with extensions on or off, asking the broker what a task minted
and whether a token a tool body saw is dead.

Test modules import it by name (``from support import …``): ``tests/`` is on the import path through its
``conftest.py``, as each suite's own ``*_support`` module is through its folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import pytest

from agentwrit_tools import Broker, TokenInvalid

MINTING = ("agent_registered", "token_issued")
"""The audit events of anything being minted for a task."""


class HasToken(Protocol):
    @property
    def token(self) -> str: ...


def is_dead(operator: Broker, token: str) -> bool:
    """Ask the broker itself (``POST /v1/token/validate``, never a cache)."""
    try:
        operator.validate(token)
    except TokenInvalid:
        return True
    return False


def assert_dead(operator: Broker, seen: Iterable[HasToken]) -> None:
    """No credential outlives its call: the broker rejects every token a body saw."""
    assert all(is_dead(operator, s.token) for s in seen)


def audit(operator: Broker, task_id: str, *event_types: str) -> list[Any]:
    """Every audit event of ``task_id`` (of the given types, when any)."""
    events = list(operator.admin.iter_audit_events(task_id=task_id))
    return [e for e in events if not event_types or e.event_type in event_types]


def assert_nothing_minted(operator: Broker, task_id: str) -> None:
    assert audit(operator, task_id, *MINTING) == []


def broker_extensions_on_or_off(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The body of a fixture parametrized ``[True, False]``: the session broker (every extension on), or a broker of
    the fixture's own as a reference broker would be (no JWKS, no revocation feed: their routes 404)."""
    if request.param:
        yield request.getfixturevalue("broker")
        return
    from agentwrit_tools.broker import EmbeddedBroker

    db = tmp_path_factory.mktemp(f"{request.fixturename}-plain") / "broker.db"
    with EmbeddedBroker(db_path=db, extensions=False) as running:
        yield running
