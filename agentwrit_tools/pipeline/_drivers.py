"""The two edges of the pipeline: the only code that exists once for sync and once for async.

Each edge drives a flow (``_flow``) and performs the effects it yields with a
:class:`~agentwrit_tools.client.Broker` or an :class:`~agentwrit_tools.client.AsyncBroker`. What differs is only
*how*: plain calls, or awaits in shielded cancel scopes — a registration or delegation in flight is finished
(so the credential it yields is in the ledger and gets released) and a release completes even while the run is
being cancelled. A stage's body runs in the caller's thread (sync), or is awaited (``async def``) or run in a
worker thread (plain functions on the async path, so they never block the event loop).

A stage's tool calls get their credentials from a *minter* (:class:`StageMinter`, :class:`AsyncStageMinter`)
that the guard's driver calls in place of a launcher; it runs :func:`call_credential_flow` on this same edge.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Literal, TypeVar, cast

import anyio
import anyio.to_thread

from ..client import AsyncBroker, AsyncCredential, Broker, Credential
from ..errors import AgentWritError
from ..guard import Task
from ..guard._drivers import obtain_shielded, release_now, release_shielded
from ..guard._launch_events import end_launchers
from ._context import StageContext
from ._effects import (
    CloseLaunchers,
    Delegate,
    Flow,
    Obtained,
    OpenLauncher,
    Register,
    Release,
    ReleaseLater,
    ReleaseOutcome,
    RunStage,
    Settle,
    StageOutcome,
)
from ._flow import call_credential_flow
from ._stage import Halt
from ._state import RunState, StageHold

__all__ = ["AsyncEdge", "AsyncStageMinter", "StageMinter", "SyncEdge"]

T = TypeVar("T")


class _EdgeBase:
    """Bookkeeping both edges share; none of it does I/O."""

    def __init__(self, run: RunState) -> None:
        self.run = run
        self._later: list[Hashable] = []  # background releases not yet waited for

    def _obtained(self, effect: Register | Delegate, credential: Any, started: float) -> Obtained:
        ended = self.run.clock()
        self.run.ledger.add(credential, effect.kind, effect.stage, ended)
        return Obtained(credential, None, started, ended)

    def _failed(self, error: AgentWritError, started: float) -> Obtained:
        return Obtained(None, error, started, self.run.clock())

    def _released(self, killed: bool, error: BaseException | None) -> ReleaseOutcome:
        return ReleaseOutcome(killed, error, self.run.clock())

    def _launcher_options(self, effect: OpenLauncher) -> dict[str, Any]:
        run = self.run
        return {"orch_id": run.orch_id, "task_id": run.task_id, "ttl": effect.budget, "max_ttl": effect.max_ttl}

    def _task_options(self, effect: RunStage) -> dict[str, Any]:
        run, stage = self.run, effect.stage
        budget = max(1, run.remaining())
        return {
            "orch_id": run.orch_id,
            "task_id": run.task_id,
            "ceiling": effect.hold.scopes,
            "budget": budget,
            "ttl": min(stage.ttl or run.call_ttl, budget),
            "policy": stage.policy or run.policy,
            "tools": stage.tools,
            "trace": run.trace,
        }

    def _stage_returned(self, value: Any, started: float) -> StageOutcome:
        if isinstance(value, Halt):
            return StageOutcome("halted", None, value, started, self.run.clock())
        return StageOutcome("ok", value, None, started, self.run.clock())

    def _stage_raised(self, exc: BaseException, started: float) -> StageOutcome:
        if isinstance(exc, Halt):
            return StageOutcome("halted", None, exc, started, self.run.clock())
        status: Literal["error", "cancelled"] = "error" if isinstance(exc, Exception) else "cancelled"
        return StageOutcome(status, None, exc, started, self.run.clock())


class SyncEdge(_EdgeBase):
    """Carries out a run's flows with a :class:`~agentwrit_tools.client.Broker`."""

    def __init__(self, broker: Broker, run: RunState) -> None:
        super().__init__(run)
        self.broker = broker

    def drive(self, flow: Flow[T]) -> T:
        outcome: Any = None
        try:
            while True:
                try:
                    effect = flow.send(outcome)
                except StopIteration as stop:
                    return cast(T, stop.value)
                if isinstance(effect, Register):
                    outcome = self._register(effect)
                elif isinstance(effect, Delegate):
                    outcome = self._delegate(effect)
                elif isinstance(effect, Release):
                    outcome = self._release(effect)
                elif isinstance(effect, ReleaseLater):
                    outcome = None
                    self._release_later(effect)
                elif isinstance(effect, Settle):
                    outcome, later, self._later = None, self._later, []
                    self.broker._settle(later)
                elif isinstance(effect, CloseLaunchers):
                    outcome = None
                    self._close_launchers(effect)
                elif isinstance(effect, OpenLauncher):
                    outcome = self.broker.task_launcher(effect.scopes, **self._launcher_options(effect))
                    outcome.prefetch()  # its launch token, ahead of the stage's first tool call
                else:
                    outcome = self._run_stage(effect)
        finally:
            flow.close()

    def _register(self, effect: Register) -> Obtained:
        started = self.run.clock()
        try:
            credential = effect.launcher.mint(list(effect.scopes), ttl=effect.ttl)
        except AgentWritError as exc:
            return self._failed(exc, started)
        return self._obtained(effect, credential, started)

    def _delegate(self, effect: Delegate) -> Obtained:
        started = self.run.clock()
        try:
            credential = effect.credential.delegate(effect.to, list(effect.scopes), **effect.options())
        except AgentWritError as exc:
            return self._failed(exc, started)
        return self._obtained(effect, credential, started)

    def _release(self, effect: Release) -> ReleaseOutcome:
        return self._released(*release_now(effect.credential))

    def _release_later(self, effect: ReleaseLater) -> None:
        key = self.broker._release_later(effect.credential)
        if key is None:
            release_now(effect.credential)  # a failure leaves it live: the clean-up releases it again
        else:
            self._later.append(key)

    def _close_launchers(self, effect: CloseLaunchers) -> None:
        outcomes: list[tuple[Any, Any, AgentWritError | None]] = []
        for launcher in effect.launchers:
            try:
                outcomes.append((launcher, launcher.close(), None))
            except AgentWritError as exc:
                outcomes.append((launcher, None, exc))
        end_launchers(self.run.trace, outcomes)

    def _run_stage(self, effect: RunStage) -> StageOutcome:
        started = self.run.clock()
        try:
            task = Task(self.broker, minter=StageMinter(self, effect.hold), **self._task_options(effect))
            with task:
                value = effect.stage.run(StageContext(effect.stage, effect.hold, task, effect.value, self.run))
        except BaseException as exc:
            return self._stage_raised(exc, started)
        return self._stage_returned(value, started)


class AsyncEdge(_EdgeBase):
    """Carries out a run's flows with an :class:`~agentwrit_tools.client.AsyncBroker`."""

    def __init__(self, broker: AsyncBroker, run: RunState) -> None:
        super().__init__(run)
        self.broker = broker

    async def drive(self, flow: Flow[T]) -> T:
        outcome: Any = None
        try:
            while True:
                try:
                    effect = flow.send(outcome)
                except StopIteration as stop:
                    return cast(T, stop.value)
                if isinstance(effect, Register):
                    outcome = await self._register(effect)
                elif isinstance(effect, Delegate):
                    outcome = await self._delegate(effect)
                elif isinstance(effect, Release):
                    outcome = await self._release(effect)
                elif isinstance(effect, ReleaseLater):
                    outcome = None
                    await self._release_later(effect)
                elif isinstance(effect, Settle):
                    outcome, later, self._later = None, self._later, []
                    with anyio.CancelScope(shield=True):
                        await self.broker._settle(later)
                elif isinstance(effect, CloseLaunchers):
                    outcome = None
                    await self._close_launchers(effect)
                elif isinstance(effect, OpenLauncher):
                    outcome = self.broker.task_launcher(effect.scopes, **self._launcher_options(effect))
                    outcome.prefetch()  # its launch token, ahead of the stage's first tool call
                else:
                    outcome = await self._run_stage(effect)
        finally:
            flow.close()

    async def _shielded(self, effect: Register | Delegate, obtain: Callable[[], Awaitable[Any]]) -> Obtained:
        started = self.run.clock()
        credential, error = await obtain_shielded(obtain)
        if error is not None:
            return self._failed(error, started)
        return self._obtained(effect, credential, started)

    async def _register(self, effect: Register) -> Obtained:
        return await self._shielded(effect, lambda: effect.launcher.mint(list(effect.scopes), ttl=effect.ttl))

    async def _delegate(self, effect: Delegate) -> Obtained:
        return await self._shielded(
            effect, lambda: effect.credential.delegate(effect.to, list(effect.scopes), **effect.options())
        )

    async def _release(self, effect: Release) -> ReleaseOutcome:
        return self._released(*await release_shielded(effect.credential))

    async def _release_later(self, effect: ReleaseLater) -> None:
        key = self.broker._release_later(effect.credential)
        if key is None:
            await release_shielded(effect.credential)  # a failure leaves it live: the clean-up releases it again
        else:
            self._later.append(key)

    async def _close_launchers(self, effect: CloseLaunchers) -> None:
        outcomes: list[tuple[Any, Any, AgentWritError | None]] = []
        with anyio.CancelScope(shield=True):  # a cancelled run still ends its launch tokens
            for launcher in effect.launchers:
                try:
                    outcomes.append((launcher, await launcher.close(), None))
                except AgentWritError as exc:
                    outcomes.append((launcher, None, exc))
        end_launchers(self.run.trace, outcomes)

    async def _run_stage(self, effect: RunStage) -> StageOutcome:
        started = self.run.clock()
        try:
            task = Task(self.broker, minter=AsyncStageMinter(self, effect.hold), **self._task_options(effect))
            async with task:
                ctx = StageContext(effect.stage, effect.hold, task, effect.value, self.run)
                if effect.stage.is_async:
                    value = await effect.stage.run(ctx)
                else:
                    body = functools.partial(effect.stage.run, ctx)
                    value = await anyio.to_thread.run_sync(body, abandon_on_cancel=True)
        except BaseException as exc:
            return self._stage_raised(exc, started)
        return self._stage_returned(value, started)


class StageMinter:
    """A stage's tool calls' credentials, delegated from its token (the guard's ``CallMinter``, sync)."""

    def __init__(self, edge: SyncEdge, hold: StageHold) -> None:
        self._edge = edge
        self._hold = hold

    def mint(self, scope: Sequence[str], *, ttl: int | None = None, audience: str | None = None) -> Credential:
        flow = call_credential_flow(self._edge.run, self._hold, tuple(scope), ttl, audience)
        return cast(Credential, self._edge.drive(flow))


class AsyncStageMinter:
    """See :class:`StageMinter` (the guard's ``AsyncCallMinter``)."""

    def __init__(self, edge: AsyncEdge, hold: StageHold) -> None:
        self._edge = edge
        self._hold = hold

    async def mint(
        self, scope: Sequence[str], *, ttl: int | None = None, audience: str | None = None
    ) -> AsyncCredential:
        flow = call_credential_flow(self._edge.run, self._hold, tuple(scope), ttl, audience)
        return cast(AsyncCredential, await self._edge.drive(flow))
