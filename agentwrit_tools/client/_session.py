"""Cached bearer sessions (app and admin): lazy, refreshed ahead of expiry, single-flight.

The official client re-authenticates whenever its cached token looks stale and does not guard concurrent
callers, so a burst of parallel calls turns into a burst of logins — which the broker rate-limits (app auth:
10/min, burst 3). Here the refresh runs inside an :class:`Exclusive` step: the first caller that finds the token
stale logs in while holding the lock, everyone queued behind it re-checks and reuses the new token. The check
before taking the lock keeps the common path (token fresh) lock-free.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import Unauthorized
from ._models import TokenGrant
from ._protocol import RetryPolicy, parse, send
from ._steps import Call, Exclusive, Flow, Response

__all__ = ["TokenSession", "refresh_margin"]


def refresh_margin(lifetime: float) -> float:
    """How long before expiry to refresh: 20 % of the lifetime, at least 30 s, at most half of it.

    Refreshing early means a call never starts with a token that dies mid-flight; the half cap keeps very short
    sessions (tests, strict operators) from being refreshed on every call.
    """
    return min(max(30.0, 0.2 * lifetime), 0.5 * lifetime)


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str = field(repr=False)
    refresh_at: float
    expires_at: float


class TokenSession:
    """One principal's bearer token (an app's or the operator's), obtained by ``login``.

    Args:
        key: lock name for the single-flight refresh (distinct per session).
        login: builds the authentication call (it carries the secret; built on demand, never stored).
        policy: retry policy for the login and the calls made with the token.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        key: str,
        login: Callable[[], Call],
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._login = login
        self._policy = policy
        self._clock = clock
        self._cached: _Cached | None = None
        self.logins = 0  # successful logins, for tests and diagnostics

    def __repr__(self) -> str:
        state = "empty" if self._cached is None else f"expires in {self._cached.expires_at - self._clock():.0f}s"
        return f"TokenSession({self._key!r}, {state})"

    def _fresh(self) -> str | None:
        cached = self._cached
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        return None

    def token(self) -> Flow[str]:
        """A usable token: the cached one, or a new one from a single-flight login."""
        found = self._fresh()
        if found is not None:
            return found
        token: str = yield Exclusive(self._key, self._refresh())
        return token

    def _refresh(self) -> Flow[str]:
        found = self._fresh()  # someone else may have logged in while we waited for the lock
        if found is not None:
            return found
        started = self._clock()
        call = self._login()
        grant = parse(TokenGrant, call, (yield from send(call, self._policy)))
        life = grant.expires_in
        # Counted from before the request left: the token cannot expire earlier than we think.
        self._cached = _Cached(grant.access_token, started + life - refresh_margin(life), started + life)
        self.logins += 1
        return grant.access_token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (so concurrent 401s cause one re-login, not many)."""
        cached = self._cached
        if cached is not None and cached.token == token:
            self._cached = None

    def call(self, build: Callable[[str], Call], *, accept: tuple[int, ...] = ()) -> Flow[Response]:
        """Send ``build(token)``; on 401 log in again once and resend.

        A 401 means the broker refused the session (revoked, restarted with a new key, clock jump), and the call
        did not take effect — so resending it with a fresh token is safe even when it is not idempotent.
        """
        token = yield from self.token()
        try:
            return (yield from send(build(token), self._policy, accept=accept))
        except Unauthorized:
            self.invalidate(token)
            token = yield from self.token()
            return (yield from send(build(token), self._policy, accept=accept))
