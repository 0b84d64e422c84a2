"""Helpers for the guard's integration tests: seeing what a tool body saw, and asking the broker what exists."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from agentwrit_tools import Broker, TokenInvalid


@dataclass(frozen=True)
class Seen:
    """What one tool body saw of its credential (the token is kept only to prove it dead afterwards)."""

    token: str
    jti: str
    agent_id: str
    scope: tuple[str, ...]
    claims: Any


class Recorder:
    """Thread-safe record of every credential a tool body received."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def saw(self, credential: Any) -> Seen:
        seen = Seen(
            credential.access_token, credential.claims.jti, credential.agent_id, credential.scope, credential.claims
        )
        with self._lock:
            self.seen.append(seen)
        return seen

    @property
    def runs(self) -> int:
        return len(self.seen)


def is_dead(operator: Broker, token: str) -> bool:
    """Ask the broker itself (``POST /v1/token/validate``, never a cache)."""
    try:
        operator.validate(token)
    except TokenInvalid:
        return True
    return False


def audit(operator: Broker, task_id: str, *event_types: str) -> list[Any]:
    """Every audit event of ``task_id`` (of the given types, when any)."""
    events = list(operator.admin.iter_audit_events(task_id=task_id))
    return [e for e in events if not event_types or e.event_type in event_types]


MINTING = ("agent_registered", "token_issued")
