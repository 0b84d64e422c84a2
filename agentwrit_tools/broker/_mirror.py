"""A replica's copy of the revocation rules, so the per-request question costs a dict lookup, not a round trip.

On PostgreSQL every validate and every bearer check asks "is this token revoked?". Asking the database each time
would add a round trip to every request; instead each replica keeps the rules in memory and keeps them fresh:

* its own revocations go in the moment their transaction commits (:meth:`RevocationMirror.add`);
* other replicas' arrive by polling the rules after the last ``seq`` seen (:meth:`RevocationMirror.apply`) —
  woken at once by PostgreSQL ``NOTIFY`` when notifications are on, else every poll interval.

Because rules get their ``seq`` in commit order (the store serialises rule writes), reading ``seq > last`` never
skips one. Freshness is a promise with a bound: a sync that *started* at time t has seen every rule committed
before t, and when the last such t is older than ``max_staleness`` the mirror refuses to answer
(:class:`~._store.StoreUnavailable`, a 503) rather than accept a token another replica revoked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ._store import StoreUnavailable

__all__ = ["RevocationMirror"]

_LEVELS = ("token", "agent", "task", "chain")


class RevocationMirror:
    """Rules by level → target → ``forget_after`` (``None``: kept for good)."""

    def __init__(self, max_staleness: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rules: dict[str, dict[str, int | None]] = {level: {} for level in _LEVELS}
        self.last_seq = 0
        self.max_staleness = max_staleness
        self._clock = clock
        self._fresh_at: float | None = None  # start of the last complete sync

    def __len__(self) -> int:
        return sum(len(targets) for targets in self._rules.values())

    def sync_started(self) -> float:
        """Call before reading the rules; hand the value to :meth:`apply` once they are read."""
        return self._clock()

    def apply(self, started: float, rows: Iterable[tuple[int, str, str, int | None]], *, complete: bool) -> None:
        """Take in rules read from the database, (seq, level, target, forget_after), in ``seq`` order.

        ``complete``: the read reached the end of the rules (else more pages follow, and freshness waits).
        """
        for seq, level, target, forget_after in rows:
            self._put(level, target, forget_after)
            self.last_seq = max(self.last_seq, seq)
        if complete:
            self._fresh_at = started

    def add(self, rules: Iterable[tuple[str, str, int | None]]) -> None:
        """This replica's own rules, as their transaction commits (their ``seq`` is read with the others')."""
        for level, target, forget_after in rules:
            self._put(level, target, forget_after)

    def _put(self, level: str, target: str, forget_after: int | None) -> None:
        targets = self._rules.get(level)
        if targets is not None:
            targets[target] = forget_after

    @property
    def staleness(self) -> float | None:
        """Seconds since the last complete sync started (None before the first)."""
        return None if self._fresh_at is None else self._clock() - self._fresh_at

    def revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        """Whether a rule revokes such a token.

        Raises:
            StoreUnavailable: the copy may be older than the bound (the database has not answered lately).
        """
        staleness = self.staleness
        if staleness is None or staleness > self.max_staleness:
            raise StoreUnavailable("the broker cannot confirm its revocation list is current")
        rules = self._rules
        return (
            jti in rules["token"]
            or sub in rules["agent"]
            or task_id in rules["task"]
            or (chain_root is not None and chain_root in rules["chain"])
        )

    def forget(self, before: float) -> int:
        """Drop ``token`` rules whose token expired before ``before`` (unix seconds); returns how many."""
        tokens = self._rules["token"]
        stale = [
            target for target, forget_after in tokens.items() if forget_after is not None and forget_after < before
        ]
        for target in stale:
            del tokens[target]
        return len(stale)
