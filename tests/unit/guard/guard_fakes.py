"""Socket-free stand-ins for the guard's unit tests: credentials, launchers, a clock, and a flow stepper."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

from agentwrit_tools.client import Claims
from agentwrit_tools.guard._flow import CallContext
from agentwrit_tools.guard._policy import Policy
from agentwrit_tools.trace import Clock, Trace

TASK_ID = "task-1"
ORCH_ID = "orch-1"
TOKEN_PREFIX = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJmYWtlIn0."


class FakeClock(Clock):
    """Monotonic time that advances by ``step`` on every reading; wall time = 1.7e9 + monotonic."""

    def __init__(self, step: float = 0.001) -> None:
        self.t = 100.0
        self.step = step
        super().__init__(self._tick, lambda: 1_700_000_000.0 + self.t)

    def _tick(self) -> float:
        self.t += self.step
        return self.t


def context(
    ceiling: tuple[str, ...] = ("read:records:*",),
    *,
    remaining: float = 300.0,
    default_ttl: int = 60,
    policy: Policy | None = None,
    clock: Clock | None = None,
) -> CallContext:
    trace = Trace(task_id=TASK_ID, orch_id=ORCH_ID, clock=clock or FakeClock())
    return CallContext(ORCH_ID, TASK_ID, ceiling, default_ttl, lambda: remaining, trace, policy or Policy.tell_model())


_numbers = itertools.count(1)


class FakeCredential:
    """Quacks like ``Credential``: verified claims, a token, a counted release."""

    def __init__(
        self,
        scope: tuple[str, ...],
        *,
        task_id: str = TASK_ID,
        orch_id: str = ORCH_ID,
        ttl: int = 60,
        release_error: BaseException | None = None,
    ) -> None:
        n = next(_numbers)
        self.agent_id = f"spiffe://agentwrit.local/agent/{orch_id}/{task_id}/{n:016x}"
        self.claims = Claims(
            sub=self.agent_id,
            exp=int(time.time()) + ttl,
            jti=secrets.token_hex(16),
            scope=scope,
            task_id=task_id,
            orch_id=orch_id,
        )
        self.access_token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.releases = 0
        self.release_error = release_error

    @property
    def scope(self) -> tuple[str, ...]:
        return self.claims.scope

    def release(self) -> bool:
        self.releases += 1
        if self.release_error is not None:
            raise self.release_error
        return self.releases == 1


class AsyncFakeCredential(FakeCredential):
    async def release(self) -> bool:  # type: ignore[override]
        return FakeCredential.release(self)


class FakeLauncher:
    """Quacks like ``TaskLauncher``: mints a FakeCredential with exactly the scopes asked for."""

    def __init__(self, make: Callable[[tuple[str, ...], int | None], Any] | None = None) -> None:
        self.minted: list[Any] = []
        self.requests: list[tuple[tuple[str, ...], int | None]] = []
        self._make = make or (lambda scopes, ttl: FakeCredential(scopes))

    def mint(self, scope: list[str], *, ttl: int | None = None) -> Any:
        self.requests.append((tuple(scope), ttl))
        credential = self._make(tuple(scope), ttl)
        self.minted.append(credential)
        return credential


class AsyncFakeLauncher(FakeLauncher):
    def __init__(self, make: Callable[[tuple[str, ...], int | None], Any] | None = None, gate: Any = None) -> None:
        super().__init__(make or (lambda scopes, ttl: AsyncFakeCredential(scopes)))
        self.gate = gate  # an anyio.Event the mint waits for, to test cancellation during a mint

    async def mint(self, scope: list[str], *, ttl: int | None = None) -> Any:  # type: ignore[override]
        if self.gate is not None:
            await self.gate.wait()
        return FakeLauncher.mint(self, scope, ttl=ttl)
