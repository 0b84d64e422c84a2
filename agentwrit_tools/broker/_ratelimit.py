"""Token-bucket rate limiting for the two authentication endpoints.

Secrets are guessed by trying them, so admin and app authentication are the endpoints worth throttling
(admin: 5/s burst 10 per client IP; app: 10/min burst 3 per client_id). Buckets live in memory — a restart
refilling them is harmless — and the table is bounded, so a flood of distinct keys cannot exhaust memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Per-key token buckets.

    Args:
        rate: tokens added per second.
        burst: bucket capacity (requests allowed back to back).
        max_keys: how many keys are tracked; the least recently used is forgotten first.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``.

        Returns:
            0.0 when allowed; otherwise the seconds to wait before the next attempt can succeed.
        """
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / self.rate

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    @staticmethod
    def retry_after(wait: float) -> str:
        """The ``Retry-After`` header value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(wait)))
