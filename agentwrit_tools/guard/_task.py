"""``Task``: one authenticated piece of work, its ceiling, and every tool call made for it.

The ceiling is enforced twice, on purpose. The guard checks each call's rendered scopes against it before
anything is minted (so the model gets a clear denial and the broker sees nothing). And the broker checks
again: every credential is minted under the task's *launch token* — a multi-use launch token whose
``allowed_scope`` is the ceiling and whose lifetime is the task's budget — and registration refuses any
requested scope outside ``allowed_scope`` (403 ``scope_violation``) before consuming anything. A client-side
check can be skipped by a bug or a patched library; the broker's cannot, and once the budget is spent the
launch token is dead, so nothing more can be minted for the task even by code that bypasses this class.
(Delegating from a task agent holding the ceiling would also work, but would keep a ceiling-wide token alive
for the whole task; a launch token is not a credential for any resource.)
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import anyio

from ..client import AsyncBroker, AsyncTaskLauncher, Broker, TaskLauncher
from ..errors import AgentWritError, ConfigurationError
from ..trace import Clock, ExposureReport, Sink, Trace, TraceEvent
from ._drivers import AsyncDriver, LiveRegistry, SyncDriver
from ._effects import AsyncCallMinter, CallFlow, CallMinter
from ._flow import CallContext, LiveCall, call_flow, record_expired, record_release, unknown_tool
from ._launch_events import end_launchers, record_launch_tokens
from ._policy import Policy
from ._result import ToolResult
from ._tool import ScopedTool
from ._validate import checked_id, checked_policy, checked_scopes, positive_seconds

__all__ = ["Task"]

DEFAULT_BUDGET = 300
DEFAULT_TTL = 60


def _ceiling(value: str | Sequence[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ConfigurationError("a task needs a ceiling: at least one scope")
    return checked_scopes(items, "task ceiling")


def _trace(trace: Trace | None, task_id: str, orch_id: str, sinks: Iterable[Sink], clock: Clock | None) -> Trace:
    if trace is None:
        return Trace(task_id=task_id, orch_id=orch_id, sinks=sinks, clock=clock)
    if not isinstance(trace, Trace):
        raise ConfigurationError(f"trace must be a Trace, not {type(trace).__name__}")
    if (trace.task_id, trace.orch_id) != (task_id, orch_id):
        raise ConfigurationError("the trace given to a task must carry the task's own task_id and orch_id")
    if list(sinks) or clock is not None:
        raise ConfigurationError("pass sinks and clock to the shared trace, not to a task that uses it")
    return trace


@overload
def _minter(minter: object, *, want_async: Literal[False]) -> CallMinter: ...


@overload
def _minter(minter: object, *, want_async: Literal[True]) -> AsyncCallMinter: ...


def _minter(minter: object, *, want_async: bool) -> CallMinter | AsyncCallMinter:
    """Check a custom minter fits the broker's I/O style: an async mint on a sync task would never be awaited."""
    mint = getattr(minter, "mint", None)
    if not callable(mint):
        raise ConfigurationError(f"a minter needs a mint(scope, *, ttl) method; {type(minter).__name__} has none")
    if inspect.iscoroutinefunction(mint) != want_async:
        need = "an async" if want_async else "a sync"
        broker = "an AsyncBroker" if want_async else "a Broker"
        raise ConfigurationError(f"a task made with {broker} needs {need} minter")
    return minter  # type: ignore[return-value]


def _by_name(tools: Iterable[ScopedTool]) -> dict[str, ScopedTool]:
    found: dict[str, ScopedTool] = {}
    for tool in tools:
        if not isinstance(tool, ScopedTool):
            raise ConfigurationError(f"tools must be ScopedTool objects (use @scoped_tool), not {type(tool).__name__}")
        if tool.name in found and found[tool.name] is not tool:
            raise ConfigurationError(f"two different tools are named {tool.name!r}")
        found[tool.name] = tool
    return found


class Task:
    """Runs tool calls for one task, each with its own exactly-scoped, short-lived credential.

    Args:
        broker: a :class:`Broker` (use :meth:`call`) or an :class:`AsyncBroker` (use :meth:`acall`) with app
            credentials whose ceiling covers this task's.
        orch_id: the orchestrator, from the authenticated request (never from the model).
        task_id: the task, from the authenticated request (never from the model).
        ceiling: the scopes this task may ever use; every call must stay within them.
        budget: seconds the task may mint for; each credential's TTL is cut to what is left.
        ttl: a credential's lifetime when its tool sets none.
        policy: how refusals and errors reach the caller (default :meth:`Policy.tell_model`).
        sinks: extra trace destinations (every event is also in :attr:`events`).
        tools: tools the model may call by name.
        clock: the trace's clocks (tests).
        minter: where each call's credential comes from, instead of :attr:`launcher` — a :class:`CallMinter`
            with a Broker, an :class:`AsyncCallMinter` with an AsyncBroker. The pipeline passes one that
            delegates from its stage's token. Every other step of the per-call flow stays as it is.
        trace: emit into this trace (shared with a pipeline, say) instead of a new one; its ``task_id`` and
            ``orch_id`` must be this task's. Cannot be combined with ``sinks`` or ``clock`` (give them to it).

    Use it as a context manager (``with`` / ``async with``). Entering fetches the task's launch token (and
    challenge nonces) ahead of the first call, off its path, when the broker client prefetches (the default); on
    exit anything still alive is released and the task's launch tokens end — revoked where the broker binds them
    to the task, reported (``launch_tokens_ended``) where it cannot. Without ``with``, nothing is fetched ahead.
    """

    def __init__(
        self,
        broker: Broker | AsyncBroker,
        *,
        orch_id: str,
        task_id: str,
        ceiling: str | Sequence[str],
        budget: int = DEFAULT_BUDGET,
        ttl: int = DEFAULT_TTL,
        policy: Policy | None = None,
        sinks: Iterable[Sink] = (),
        tools: Iterable[ScopedTool] = (),
        clock: Clock | None = None,
        minter: CallMinter | AsyncCallMinter | None = None,
        trace: Trace | None = None,
    ) -> None:
        self.orch_id = checked_id(orch_id, "orch_id")
        self.task_id = checked_id(task_id, "task_id")
        self.ceiling = _ceiling(ceiling)
        self.budget = positive_seconds(budget, "budget")
        self.ttl = min(positive_seconds(ttl, "ttl"), self.budget)
        self.policy = checked_policy(policy)
        self.trace = _trace(trace, self.task_id, self.orch_id, sinks, clock)
        self._tools = _by_name(tools)
        self._registry = LiveRegistry()
        self._numbers = itertools.count(1)
        self._closed = False
        self.launcher: TaskLauncher | AsyncTaskLauncher
        """The broker-side ceiling: mints under a launch token whose ``allowed_scope`` is :attr:`ceiling`."""
        self._sync: SyncDriver | None = None
        self._async: AsyncDriver | None = None
        self._own_launcher = minter is None  # a custom minter leaves the launcher (and its launch tokens) unused
        options: dict[str, Any] = {"orch_id": self.orch_id, "task_id": self.task_id, "ttl": self.budget}
        if isinstance(broker, Broker):
            self.launcher = broker.task_launcher(self.ceiling, max_ttl=self.ttl, **options)
            sync_minter: CallMinter = self.launcher if minter is None else _minter(minter, want_async=False)
            self._sync = SyncDriver(
                sync_minter, self._registry, self.trace.now, broker.record_approval, self._note_launch_tokens
            )
        elif isinstance(broker, AsyncBroker):
            self.launcher = broker.task_launcher(self.ceiling, max_ttl=self.ttl, **options)
            async_minter: AsyncCallMinter = self.launcher if minter is None else _minter(minter, want_async=True)
            self._async = AsyncDriver(
                async_minter, self._registry, self.trace.now, broker.record_approval, self._note_launch_tokens
            )
        else:
            raise ConfigurationError(f"a Task needs a Broker or an AsyncBroker, not {type(broker).__name__}")
        self.broker = broker
        # The client-side check reads this; the broker's check is the launcher's allowed_scope.
        self._checked_ceiling = self.ceiling

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def events(self) -> list[TraceEvent]:
        """Every trace event so far, in order (a copy)."""
        return list(self.trace.events.events)

    @property
    def tools(self) -> Mapping[str, ScopedTool]:
        """The tools callable by name."""
        return dict(self._tools)

    @property
    def live_credentials(self) -> int:
        """Credentials minted and not yet released (0 between calls unless a release failed)."""
        return len(self._registry)

    @property
    def closed(self) -> bool:
        return self._closed

    def remaining(self) -> float:
        """Seconds left in the budget."""
        return self.launcher.remaining()

    def exposure(self) -> ExposureReport:
        """The exposure report of every credential minted so far."""
        return ExposureReport.from_events(self.trace.events.events)

    def __repr__(self) -> str:
        return f"Task(task_id={self.task_id!r}, orch_id={self.orch_id!r}, ceiling={list(self.ceiling)!r})"

    # -- calls ------------------------------------------------------------------------------------------------

    def _context(self) -> CallContext:
        return CallContext(
            self.orch_id, self.task_id, self._checked_ceiling, self.ttl, self.remaining, self.trace, self.policy
        )

    def _prepare(
        self,
        tool: ScopedTool | str,
        arguments: Mapping[str, Any] | str | None,
        call_id: str | None,
        tools: Iterable[ScopedTool] | None,
        *,
        want_async: bool,
    ) -> CallFlow | ToolResult:
        if self._closed:
            raise ConfigurationError(f"task {self.task_id!r} is closed")
        if want_async and self._async is None:
            raise ConfigurationError("this task was made with a Broker: use task.call(...), or pass an AsyncBroker")
        if not want_async and self._sync is None:
            raise ConfigurationError("this task was made with an AsyncBroker: use await task.acall(...)")
        if call_id is not None and not isinstance(call_id, str):
            raise ConfigurationError("call_id must be a string")
        call = call_id or f"call-{next(self._numbers)}"
        if isinstance(tool, ScopedTool):
            resolved = tool
        elif isinstance(tool, str):
            known = _by_name(tools) if tools is not None else self._tools
            found = known.get(tool)
            if found is None:
                return self._apply(unknown_tool(self._context(), tool, call, known))
            resolved = found
        else:
            raise ConfigurationError(f"tool must be a ScopedTool or a tool name, not {type(tool).__name__}")
        if resolved.is_async and not want_async:
            raise ConfigurationError(f"tool {resolved.name!r} is async: call it with await task.acall(...)")
        return call_flow(self._context(), resolved, arguments, call)

    def _apply(self, result: ToolResult) -> ToolResult:
        if self.policy.wants_raise(result) and result.exception is not None:
            raise result.exception
        return result

    def call(
        self,
        tool: ScopedTool | str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        call_id: str | None = None,
        tools: Iterable[ScopedTool] | None = None,
    ) -> ToolResult:
        """Run one tool call with its own credential (needs a :class:`Broker`).

        Args:
            tool: the tool, or its name as the model gave it (looked up in ``tools`` or the task's tools; an
                unknown name is an ``unknown_tool`` denial).
            arguments: the model's arguments, as a dict or as the JSON text of one.
            call_id: the model's tool-call id (default: ``call-<n>``).
            tools: where to look a name up, instead of the task's own tools.

        Raises:
            ConfigurationError: the task was made with an AsyncBroker, the tool is async, or the task is closed.
            AgentWritError or the tool's own exception: only when the policy says to raise.
        """
        prepared = self._prepare(tool, arguments, call_id, tools, want_async=False)
        if isinstance(prepared, ToolResult):
            return prepared
        assert self._sync is not None  # noqa: S101 - _prepare checked it
        return self._apply(self._sync.drive(prepared))

    async def acall(
        self,
        tool: ScopedTool | str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        call_id: str | None = None,
        tools: Iterable[ScopedTool] | None = None,
    ) -> ToolResult:
        """See :meth:`call` (needs an :class:`AsyncBroker`; sync tools run in a worker thread)."""
        prepared = self._prepare(tool, arguments, call_id, tools, want_async=True)
        if isinstance(prepared, ToolResult):
            return prepared
        assert self._async is not None  # noqa: S101 - _prepare checked it
        return self._apply(await self._async.drive(prepared))

    # -- closing ----------------------------------------------------------------------------------------------

    def _leftovers(self) -> list[LiveCall]:
        """Credentials still registered; those already past their ``exp`` are recorded as expired instead."""
        alive = []
        now = self.trace.clock.wall()
        for live in self._registry.snapshot():
            claims = live.credential.claims
            if claims.exp <= now:
                record_expired(self.trace, live, claims)
                self._registry.discard(claims.jti)
            else:
                alive.append(live)
        return alive

    def close(self) -> None:
        """Release every credential still alive (normally none: only failed releases), end the task's launch tokens
        (revoked when the broker can, reported when it cannot) and refuse further calls.

        Idempotent; a release or revocation that fails is recorded, never raised.
        """
        if self._sync is None:
            raise ConfigurationError("this task was made with an AsyncBroker: use await task.aclose()")
        was_open, self._closed = not self._closed, True
        for live in self._leftovers():
            record_release(self.trace, live, live.credential.claims, self._sync.release(live.credential))
        launcher = self.launcher
        if was_open and self._own_launcher and isinstance(launcher, TaskLauncher):
            try:
                end_launchers(self.trace, [(launcher, launcher.close(), None)])
            except AgentWritError as exc:
                end_launchers(self.trace, [(launcher, None, exc)])

    async def aclose(self) -> None:
        """See :meth:`close`."""
        if self._async is None:
            raise ConfigurationError("this task was made with a Broker: use task.close()")
        was_open, self._closed = not self._closed, True
        for live in self._leftovers():
            record_release(self.trace, live, live.credential.claims, await self._async.release(live.credential))
        launcher = self.launcher
        if was_open and self._own_launcher and isinstance(launcher, AsyncTaskLauncher):
            with anyio.CancelScope(shield=True):  # a cancelled task still ends its launch tokens
                try:
                    end_launchers(self.trace, [(launcher, await launcher.close(), None)])
                except AgentWritError as exc:
                    end_launchers(self.trace, [(launcher, None, exc)])

    def __enter__(self) -> Task:
        if self._sync is None:
            raise ConfigurationError("this task was made with an AsyncBroker: use 'async with'")
        self._prefetch()
        return self

    def _note_launch_tokens(self) -> None:
        """After each mint, before its ``minted`` event: a launch token the mint used or created is in the trace."""
        if self._own_launcher:
            record_launch_tokens(self.trace, self.launcher)

    def _prefetch(self) -> None:
        """Entered, so closed for sure: fetch the launch token ahead (it is ended by :meth:`close`)."""
        if self._own_launcher and not self._closed:
            self.launcher.prefetch()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Task:
        if self._async is None:
            raise ConfigurationError("this task was made with a Broker: use 'with'")
        self._prefetch()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
