"""Helpers for the guard's integration tests: seeing what a tool body saw (asking the broker is in ``support``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


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
