"""The ledger: every credential a run minted, in order, until the run has released it.

The edges write to it the moment the broker hands out a credential — before any flow decides anything — so a
credential cannot exist without being on the list the run's clean-up walks. Clean-up walks it newest first:
per-call credentials and registrations before the stage tokens they came from, and each stage token after the
stages it delegated to. With the broker's cascade extension, releasing a stage would take its delegates with
it anyway; releasing leaves first means each release kills its own token with or without the extension.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Held", "Kind", "Ledger", "MintedRecord"]

Kind = Literal["stage", "call", "registration"]
"""``stage``: a stage's token. ``call``: a tool call's credential. ``registration``: the token a new agent gets
when it registers, released at once — the agent's authority comes only by delegation."""


@dataclass(frozen=True, slots=True)
class MintedRecord:
    """One credential a run minted, without its token.

    Attributes:
        kind: ``stage``, ``call`` or ``registration``.
        stage: the stage it was minted for.
        jti: its token id.
        agent_id: its holder.
        scope: its verified scope.
        depth: records in its delegation chain.
        released: the run saw it die (its release went through, or the broker said it was already dead).
    """

    kind: Kind
    stage: str
    jti: str
    agent_id: str
    scope: tuple[str, ...]
    depth: int
    released: bool


@dataclass(slots=True)
class Held:
    """A ledger entry: the credential, what it was for, and when it was obtained (monotonic)."""

    credential: Any = field(repr=False)
    kind: Kind
    stage: str
    obtained_at: float

    @property
    def live(self) -> bool:
        """Not yet released as far as this process knows."""
        return not bool(self.credential.released)

    def record(self) -> MintedRecord:
        claims = self.credential.claims
        return MintedRecord(
            self.kind, self.stage, claims.jti, claims.sub, tuple(claims.scope), claims.depth, not self.live
        )


class Ledger:
    """Thread-safe list of what a run minted (tool calls of one stage may mint concurrently)."""

    def __init__(self) -> None:
        self._held: list[Held] = []
        self._lock = threading.Lock()

    def add(self, credential: Any, kind: Kind, stage: str, obtained_at: float) -> Held:
        held = Held(credential, kind, stage, obtained_at)
        with self._lock:
            self._held.append(held)
        return held

    def live_newest_first(self) -> list[Held]:
        """Entries not yet released, newest first: the order clean-up releases them in."""
        with self._lock:
            return [held for held in reversed(self._held) if held.live]

    def records(self) -> tuple[MintedRecord, ...]:
        with self._lock:
            return tuple(held.record() for held in self._held)

    def __len__(self) -> int:
        return len(self._held)
