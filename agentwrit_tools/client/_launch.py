"""A task's ceiling held by the broker, and the launch tokens that carry it — fetched ahead, and dead with the task.

Registration checks requested ⊆ the launch token's ``allowed_scope`` before consuming anything, so every credential
minted under a task launch token whose ``allowed_scope`` is the ceiling is refused by the broker itself when it
exceeds the ceiling — a client-side check can be bypassed, this cannot. A credential's lifetime is its launch
token's ``max_ttl`` (registration has no ttl field), so one multi-use launch token is created per distinct ttl,
single-flight, and reused for every mint with that ttl; near the end of the budget a ttl is clamped to the time
left, and once the budget is spent nothing more is minted.

**Fetched ahead.** A task's first tool call would otherwise wait for its launch token (and, on a new client, the
app login): :meth:`TaskLaunch.token_flow` can run off the call's path as soon as the task starts, and a launch
token near the end of its usable life is replaced ahead of time in the same way.

**Dead with the task.** A launch token created before anyone asked for it must not outlive the task as something
usable. Each is requested with the task's ``task_id``:

* a broker with our extension *binds* it to the task (its answer's ``policy.task_id`` says so): it registers
  agents for this task only, it lives as long as the task's budget, and :meth:`TaskLaunch.close_flow` revokes every
  one the task holds (``POST /v1/launch-tokens/revoke``) when the task ends — as does an operator's task-level
  revocation;
* a reference broker ignores the field and cannot revoke a launch token: each then lives
  :data:`UNBOUND_LAUNCH_TTL` seconds at most (the shortest that still spares the calls a round trip; replaced ahead
  as it ages), and :meth:`TaskLaunch.close_flow` reports how many are left and when the last one dies, for the trace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..errors import ConfigurationError, TaskBudgetExhausted, Unauthorized
from ._flows import Core, Minted, app_launch_token, check_audience, check_ttl, launch_body, normalize_scopes, register
from ._models import LaunchRevocation
from ._prefetch import usable_for
from ._protocol import parse
from ._steps import Call, Exclusive, Flow
from ._verify import _epoch_seconds

__all__ = ["UNBOUND_LAUNCH_TTL", "IssuedLaunch", "LaunchEnd", "TaskLaunch", "revoke_launch_tokens"]

UNBOUND_LAUNCH_TTL = 30
_ABSENT = (404, 405)
_REVOKE_BATCH = 64


@dataclass(frozen=True, slots=True)
class IssuedLaunch:
    """One launch token a task holds (the value never leaves this object's repr-free field).

    Attributes:
        ttl: the credential lifetime it grants (its ``max_ttl``).
        expires: Unix seconds when the broker stops accepting it.
        bound: bound to the task by the broker, so it can be revoked.
        prefetched: fetched off every call's path (ahead of the task's first call, or to replace an aging one).
        obtained_at: monotonic seconds when it was asked for.
        usable_until: monotonic seconds after which it is not used any more (a margin before ``expires``).
    """

    ttl: int
    expires: float
    bound: bool
    prefetched: bool
    obtained_at: float
    usable_until: float
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class LaunchEnd:
    """What became of a task's launch tokens when it ended.

    Attributes:
        revoked: how many the broker reported revoked (bound ones not yet used up).
        unrevocable: how many are still alive and could not be revoked (a broker without the extension).
        expires: Unix seconds when the last of those dies (None: none is left).
    """

    revoked: int = 0
    unrevocable: int = 0
    expires: float | None = None


def revoke_launch_tokens(core: Core, tokens: Sequence[str]) -> Flow[int]:
    """``POST /v1/launch-tokens/revoke`` with the app's bearer for exactly ``tokens``; how many were still live."""
    session = core.require_app()
    total = 0
    for start in range(0, len(tokens), _REVOKE_BATCH):
        chunk = list(tokens[start : start + _REVOKE_BATCH])

        def build(bearer: str, chunk: list[str] = chunk) -> Call:
            return Call("POST", "/v1/launch-tokens/revoke", body={"launch_tokens": chunk}, bearer=bearer)

        response = yield from session.call(build)
        total += parse(LaunchRevocation, build(""), response).count
    return total


class TaskLaunch:
    """The launch tokens of one task (see the module docstring)."""

    def __init__(
        self,
        ceiling: str | Sequence[str],
        *,
        orch_id: str,
        task_id: str,
        budget: int,
        max_ttl: int | None = None,
        agent_name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_ttl(budget)
        check_ttl(max_ttl)
        self.ceiling = normalize_scopes(ceiling)
        self.orch_id = orch_id
        self.task_id = task_id
        self.max_ttl = min(max_ttl or 300, budget)
        self._agent_name = agent_name or task_id
        self._clock = clock
        self._deadline = clock() + budget
        self._tokens: dict[int, IssuedLaunch] = {}
        self.issued: list[IssuedLaunch] = []
        """Every launch token this task created, oldest first."""
        self._reported = 0
        self.closed = False

    def remaining(self) -> float:
        """Seconds left in the task's budget."""
        return max(0.0, self._deadline - self._clock())

    def _usable(self, ttl: int) -> IssuedLaunch | None:
        held = self._tokens.get(ttl)
        return held if held is not None and held.usable_until > self._clock() else None

    def aging(self) -> list[int]:
        """The ttls whose launch token wants a replacement fetched ahead (see :meth:`wants_replacement`)."""
        return [ttl for ttl in list(self._tokens) if self.wants_replacement(ttl)]

    def wants_replacement(self, ttl: int) -> bool:
        """The launch token for ``ttl`` is past half of its usable life (and the task will outlive it)."""
        held = self._tokens.get(ttl)
        if held is None or held.bound:
            return False
        left = held.usable_until - self._clock()
        return 0 < left < (held.usable_until - held.obtained_at) / 2 and self.remaining() > left

    def unreported(self) -> list[IssuedLaunch]:
        """Launch tokens created since the last call of this (for the task's trace)."""
        news = self.issued[self._reported :]
        self._reported = len(self.issued)
        return news

    def token_flow(self, core: Core, ttl: int, *, prefetched: bool = False, replace_aging: bool = False) -> Flow[str]:
        """A usable launch token for credentials of ``ttl`` seconds: the one held, or a new one (single-flight).

        ``replace_aging`` creates a new one even while the held one is still usable (a replacement fetched ahead).
        """
        held = self._usable(ttl)
        if held is not None and not (replace_aging and self.wants_replacement(ttl)):
            return held.token
        token: str = yield Exclusive(("task-launch", id(self), ttl), self._create(core, ttl, prefetched, replace_aging))
        return token

    def _create(self, core: Core, ttl: int, prefetched: bool, replace_aging: bool) -> Flow[str]:
        held = self._usable(ttl)  # another caller may have created one while we waited for the lock
        if held is not None and not (replace_aging and self.wants_replacement(ttl)):
            return held.token
        if self.closed:
            raise ConfigurationError(f"task {self.task_id!r} has ended: no more launch tokens for it")
        left = math.floor(self.remaining())
        if left < 1:
            raise TaskBudgetExhausted(f"task {self.task_id!r} has no time left in its budget")
        life = left if core.launch_binding else min(left, UNBOUND_LAUNCH_TTL)
        body = launch_body(
            self._agent_name, self.ceiling, max_ttl=ttl, single_use=False, ttl=life, task_id=self.task_id
        )
        started, wall = self._clock(), core.wall()
        answer = yield from app_launch_token(core, body)
        bound = answer.policy.task_id == self.task_id
        core.launch_binding = bound
        expires = _epoch_seconds(answer.expires_at) or wall + life
        issued = IssuedLaunch(
            ttl, expires, bound, prefetched, started, started + usable_for(float(life)), answer.launch_token
        )
        self._tokens[ttl] = issued
        self.issued.append(issued)
        return issued.token

    def mint(
        self, core: Core, scope: str | Sequence[str], *, ttl: int | None = None, audience: str | None = None
    ) -> Flow[Minted]:
        """A credential for exactly ``scope`` under the task's launch token (created on this path only when none
        is held); one fresh attempt — new launch token, nonce fetched on the spot — when the broker refuses."""
        scopes = normalize_scopes(scope)
        check_ttl(ttl)
        check_audience(audience)
        left = math.floor(self.remaining())
        if left < 1:
            raise TaskBudgetExhausted(f"task {self.task_id!r} has no time left in its budget")
        effective = min(ttl or self.max_ttl, left)

        def attempt(token: str, fresh: bool) -> Flow[Minted]:
            return register(
                core,
                launch_token=token,
                scopes=scopes,
                orch_id=self.orch_id,
                task_id=self.task_id,
                ttl=effective,
                audience=audience,
                fresh_nonce=fresh,
            )

        held = self._usable(effective) is not None
        token = yield from self.token_flow(core, effective)
        try:
            minted = yield from attempt(token, False)
        except Unauthorized:
            # The launch token may have been revoked or expired early (or a nonce refused): one fresh attempt with
            # a new launch token and a nonce fetched now, never a loop.
            current = self._tokens.get(effective)
            if current is not None and current.token == token:
                del self._tokens[effective]
            held = False
            minted = yield from attempt((yield from self.token_flow(core, effective)), True)
        return replace(minted, prefetched=(*minted.prefetched, "launch_token")) if held else minted

    def unrevoked(self, now: float | None = None) -> LaunchEnd:
        """Every launch token still alive, as not revoked (what is left when a revocation did not go through)."""
        wall = time.time() if now is None else now
        alive = [issued.expires for issued in self.issued if issued.expires > wall]
        return LaunchEnd(0, len(alive), max(alive) if alive else None)

    def close_flow(self, core: Core) -> Flow[LaunchEnd]:
        """End the task's launch tokens: revoke the bound ones still alive; report the ones that cannot be.

        Raises:
            AgentWritError: the revocation did not go through (the bound tokens then die at their ``ttl``).
        """
        self.closed = True
        now = core.wall()
        alive = [issued for issued in self.issued if issued.expires > now]
        bound = [issued.token for issued in alive if issued.bound]
        revoked = (yield from revoke_launch_tokens(core, bound)) if bound else 0
        left = [issued.expires for issued in alive if not issued.bound]
        return LaunchEnd(revoked, len(left), max(left) if left else None)
