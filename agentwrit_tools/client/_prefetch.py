"""What a broker client fetches ahead so a call's credential costs two round trips (register, release): challenge
nonces, kept in a bounded pool — written once, free of I/O, like every flow.

A registration needs a fresh nonce from ``GET /v1/challenge``; waiting for it made it a third round trip on every
guarded call. A nonce is worth nothing on its own (anyone may ask for one; it proves freshness, not authority: a
registration still needs a launch token and the signature of a key), so fetching some ahead changes no security
property as long as each is used at most once and never after it expires. The pool keeps that promise:

* *single use* — :meth:`NoncePool.take` hands each nonce out once;
* *never past its TTL* — a nonce is usable until its ``expires_in`` (counted from *before* the request that got it
  left) minus a margin (:func:`usable_for`), so a registration started with it still reaches the broker in time;
  expired ones are dropped, never handed out;
* *bounded* — it holds at most :attr:`NoncePool.capacity`, which doubles when calls find it empty (up to 128) and
  halves when nonces expire unused (down to 4), so it follows the demand instead of guessing it.

Refills run off the callers' path (``_background``) when the pool is at half its capacity or below. With our
broker's extension a refill is one ``POST /v1/challenges`` of up to 64 nonces; against a reference broker (404)
it falls back to ``GET /v1/challenge``, a few at a time. A call that finds the pool empty fetches its nonce
itself, exactly as without a pool.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from ._models import Challenge, ChallengeBatch
from ._protocol import RetryPolicy, parse, send
from ._session import TokenSession
from ._steps import Call, Flow

__all__ = ["BATCH", "NoncePool", "fill_nonces", "usable_for"]

BATCH = 64  # the most nonces one POST /v1/challenges hands out
SINGLES = 8  # the most GET /v1/challenge one refill makes (reference broker)
RETRY_AFTER_FAILURE = 1.0  # seconds a failed refill waits before the next one
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ABSENT = (404, 405)


def usable_for(lifetime: float) -> float:
    """Seconds of a fetched-ahead item's ``lifetime`` it may be used in: all but a margin of a fifth of it, at least
    a quarter of a second and at most five (time for the request that uses it to reach the broker)."""
    return lifetime - min(5.0, max(0.25, 0.2 * lifetime))


class NoncePool:
    """Challenge nonces fetched ahead (see the module docstring). Thread-safe: a sync broker's threads share it."""

    def __init__(
        self, *, capacity: int = 8, most: int = 128, least: int = 4, clock: Callable[[], float] = time.monotonic
    ):
        self.capacity = capacity
        self._most = most
        self._least = least
        self._clock = clock
        self._items: deque[tuple[str, float]] = deque()  # (nonce, usable until), oldest first
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self.batch: bool | None = None  # the broker serves POST /v1/challenges (None: not known yet)
        self.fetched = self.taken = self.dropped = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def _drop_expired(self, now: float) -> None:
        items = self._items
        dropped = 0
        while items and items[0][1] <= now:
            items.popleft()
            dropped += 1
        if dropped:
            self.dropped += dropped
            self.capacity = max(self._least, self.capacity // 2)

    def take(self) -> str | None:
        """A nonce nobody has used, still inside its usable time; None when there is none (fetch one yourself)."""
        with self._lock:
            self._drop_expired(self._clock())
            if self._items:
                self.taken += 1
                return self._items.popleft()[0]
            self.misses += 1
            self.capacity = min(self._most, self.capacity * 2)
            return None

    def wanted(self) -> int:
        """How many to fetch now: up to the capacity once the pool is at half of it or below, else 0."""
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            if self._failed_at is not None and now - self._failed_at < RETRY_AFTER_FAILURE:
                return 0
            held = len(self._items)
            return self.capacity - held if held <= self.capacity // 2 else 0

    def add(self, nonces: Sequence[str], expires_in: float, fetched_at: float) -> int:
        """Keep ``nonces`` fetched by a request that left at ``fetched_at`` (monotonic); how many were kept."""
        until = fetched_at + usable_for(expires_in)
        with self._lock:
            self._failed_at = None
            fresh = [n for n in nonces if _HEX64.fullmatch(n)][: max(0, self._most - len(self._items))]
            if until <= self._clock():
                self.dropped += len(fresh)
                return 0
            self._items.extend((nonce, until) for nonce in fresh)
            self.fetched += len(fresh)
            return len(fresh)

    def failed(self) -> None:
        """A refill failed: the next one waits a moment (a broker in trouble is not asked again on every call)."""
        with self._lock:
            self._failed_at = self._clock()

    def clear(self) -> int:
        """Forget every nonce (the client is closing); how many were dropped."""
        with self._lock:
            dropped = len(self._items)
            self._items.clear()
            self.dropped += dropped
            return dropped


def _challenge_call(count: int) -> Callable[[str], Call]:
    def build(bearer: str) -> Call:
        return Call("POST", "/v1/challenges", body={"count": count}, bearer=bearer)

    return build


def fill_nonces(
    pool: NoncePool, policy: RetryPolicy, session: TokenSession | None, clock: Callable[[], float] = time.monotonic
) -> Flow[int]:
    """Top the pool up to its capacity; how many nonces were added.

    One ``POST /v1/challenges`` per 64 with the app's (or operator's) bearer when the broker serves it, else up to
    :data:`SINGLES` ``GET /v1/challenge``. A failure marks the pool (see :meth:`NoncePool.failed`) and is raised.
    """
    added = singles = 0
    try:
        while (want := pool.wanted()) > 0:
            started = clock()
            if pool.batch is not False and session is not None:
                count = min(want, BATCH)
                build = _challenge_call(count)
                response = yield from session.call(build, accept=_ABSENT)
                if response.status in _ABSENT:
                    pool.batch = False
                    continue
                batch = parse(ChallengeBatch, build(""), response)
                pool.batch = True
                kept = pool.add(batch.nonces, batch.expires_in, started)
            else:
                if singles >= SINGLES:
                    break
                call = Call("GET", "/v1/challenge", idempotent=True)
                challenge = parse(Challenge, call, (yield from send(call, policy)))
                singles += 1
                kept = pool.add([challenge.nonce], challenge.expires_in, started)
            if not kept:
                break  # nothing usable came back: do not loop on it
            added += kept
    except BaseException:
        pool.failed()
        raise
    return added
