"""``Relay``: a pipeline whose next stage is chosen while it runs — by a model handing off to another agent.

A :class:`~agentwrit_tools.pipeline.Pipeline` knows its stages in advance. In agent frameworks with handoffs
(the OpenAI Agents SDK's ``handoff``) the model decides who works next, so the chain of authority is built as it
goes, with the same rules and the same code as a pipeline's (``take_over``):

* the first holder's token is registered under the task ceiling (the broker enforces it);
* each handoff delegates the next holder's scope from the current holder's token — narrowing only: the relay
  refuses a wider scope first (:class:`~agentwrit_tools.pipeline.DelegationRefused`), the broker refuses it
  again — so a handoff back to a wider agent is refused;
* each holder's tool calls run the guard's per-call flow with credentials delegated from the holder's token,
  so every call's verified ``delegation_chain`` names the agents above it;
* :meth:`Relay.aclose` (or leaving ``async with``) releases everything the relay minted, newest first.

The relay is async (agent frameworks with handoffs are). It is framework-neutral; the Agents SDK glue is
:mod:`agentwrit_tools.adapters.openai_agents`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import anyio

from ..client import AsyncBroker
from ..errors import ConfigurationError
from ..guard import Policy, ScopedTool, Task
from ..guard._validate import checked_policy
from ..trace import Sink, Trace
from ._drivers import AsyncEdge, AsyncStageMinter
from ._errors import DelegationRefused
from ._flow import record_refusal, sweep_flow, take_over
from ._pipeline import DEFAULT_BUDGET, DEFAULT_CALL_TTL, MAX_DEPTH, REGISTRATION_TTL
from ._stage import Stage, scopes_of
from ._state import RunState, StageHold

__all__ = ["Relay"]


def _driven_elsewhere(ctx: Any) -> Any:
    raise ConfigurationError("a relay stage is run by the agent framework, not by a pipeline")


class Relay:
    """Authority handed from holder to holder at run time, narrowing only; see the module docstring.

    Args:
        broker: an :class:`AsyncBroker` with app credentials whose ceiling covers ``ceiling``.
        orch_id: the orchestrator, from the authenticated request (never from a model).
        task_id: the task, from the authenticated request (never from a model).
        ceiling: the task's scopes; the first holder's must be within them.
        budget: seconds the relay may hold credentials for.
        call_ttl: default lifetime of a tool call's credential.
        policy: how refused or failed tool calls reach the model (default: told to it).
        sinks: where to stream the trace's events.
    """

    def __init__(
        self,
        broker: AsyncBroker,
        *,
        orch_id: str,
        task_id: str,
        ceiling: str | Sequence[str],
        budget: int = DEFAULT_BUDGET,
        call_ttl: int = DEFAULT_CALL_TTL,
        policy: Policy | None = None,
        sinks: Iterable[Sink] = (),
    ) -> None:
        if not isinstance(broker, AsyncBroker):
            raise ConfigurationError(f"a Relay needs an AsyncBroker, not {type(broker).__name__}")
        self.run = RunState.checked(
            (),
            orch_id=orch_id,
            task_id=task_id,
            ceiling=ceiling,
            budget=budget,
            call_ttl=call_ttl,
            policy=policy,
            max_depth=MAX_DEPTH,
            registration_ttl=REGISTRATION_TTL,
            sinks=sinks,
        )
        self.broker = broker
        self._edge = AsyncEdge(broker, self.run)
        self._lock = anyio.Lock()
        self._hold: StageHold | None = None
        self._task: Task | None = None
        self._tasks: list[Task] = []
        self._closed = False

    @property
    def trace(self) -> Trace:
        """Every event: handoffs (``stage_started``, ``delegated``, ``handoff_refused``…) and each call's."""
        return self.run.trace

    @property
    def holder(self) -> str | None:
        """The name of the holder whose token the tool calls delegate from now, or None before the first."""
        return None if self._hold is None else self._hold.stage.name

    @property
    def lineage(self) -> tuple[str, ...]:
        """The agent ids the current holder's authority passed through, oldest first (empty before the first)."""
        if self._hold is None:
            return ()
        claims = self._hold.claims
        return (*(record.agent for record in claims.delegation_chain), claims.sub)

    async def hand_to(
        self,
        name: str,
        scope: str | Sequence[str],
        *,
        tools: Sequence[ScopedTool] = (),
        ttl: int | None = None,
        policy: Policy | None = None,
    ) -> Task:
        """Make ``name`` the holder: its token registered under the ceiling (the first time) or delegated from
        the current holder's, narrowing only; returns the guard task its tool calls go through.

        Handing to the current holder again returns its task unchanged.

        Raises:
            DelegationRefused: ``scope`` is not within what the current holder (or the ceiling) holds.
            DelegationTooDeep: the chain would pass the broker's depth limit.
            ConfigurationError: the relay is closed, or a bad name or scope.
            AgentWritError: the broker failed.
        """
        async with self._lock:
            if self._closed:
                raise ConfigurationError("the relay is closed")
            if self._hold is not None and self._task is not None and self._hold.stage.name == name:
                return self._task
            stage = Stage(name, scopes_of(scope, f"holder {name!r}"), _driven_elsewhere, tools=tools, ttl=ttl)
            stage_policy = policy if policy is not None else self.run.policy
            index = 0 if self._hold is None else self._hold.index + 1
            scopes = stage.scopes_for(None)
            try:
                hold = await self._edge.drive(take_over(self.run, stage, index, scopes, self._hold))
            except DelegationRefused as refusal:
                record_refusal(self.run, refusal)
                raise
            budget = max(1, self.run.remaining())
            task = Task(
                self.broker,
                orch_id=self.run.orch_id,
                task_id=self.run.task_id,
                ceiling=hold.scopes,
                budget=budget,
                ttl=min(ttl or self.run.call_ttl, budget),
                policy=checked_policy(stage_policy),
                tools=tools,
                trace=self.run.trace,
                minter=AsyncStageMinter(self._edge, hold),
            )
            self._hold, self._task = hold, task
            self._tasks.append(task)
            return task

    async def aclose(self) -> None:
        """Release every credential the relay minted, newest first; further handoffs are refused. Idempotent."""
        with anyio.CancelScope(shield=True):
            async with self._lock:
                self._closed = True
                for task in reversed(self._tasks):
                    await task.aclose()
                await self._edge.drive(sweep_flow(self.run))

    async def __aenter__(self) -> Relay:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
