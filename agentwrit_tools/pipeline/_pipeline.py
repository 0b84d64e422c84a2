"""``Pipeline``: stages of agents handing each other authority that can only narrow, with guaranteed clean-up.

A pipeline is a reusable declaration; each :meth:`Pipeline.run` / :meth:`Pipeline.arun` is one task, with the
ids and ceiling of the authenticated request that started it. During a run:

1. Every declared scope is checked to narrow (first stage ⊆ ceiling, each stage ⊆ the one before) before
   anything is minted.
2. The first stage's agent is registered under the task ceiling (a launch token whose ``allowed_scope`` is the
   ceiling: the broker enforces it).
3. At each handoff the previous stage's token delegates the next stage's scope to the next stage's agent; the
   broker refuses widening, and the pipeline refuses it first with a :class:`DelegationRefused` naming the
   scopes. Stage ``n``'s token carries ``n - 1`` delegation records.
4. A stage's tool calls run the guard's per-call flow; each credential is delegated from the stage's token to a
   fresh agent, for exactly the call's scope, and released after the call — its ``delegation_chain`` names
   every stage above it.
5. A stage may halt the run; nothing downstream is minted.
6. However the run ends — completed, halted, or by an exception or cancellation — every credential it minted is
   released, newest first, before :meth:`run` returns or re-raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import anyio

from ..client import AsyncBroker, Broker
from ..errors import ConfigurationError
from ..guard import Policy
from ..guard._validate import positive_seconds
from ..trace import Clock, Sink
from ._drivers import AsyncEdge, SyncEdge
from ._errors import DelegationTooDeep
from ._flow import run_flow, sweep_flow
from ._result import PipelineResult
from ._stage import Stage
from ._state import RunState

__all__ = ["DEFAULT_BUDGET", "DEFAULT_CALL_TTL", "MAX_DEPTH", "REGISTRATION_TTL", "Pipeline"]

MAX_DEPTH = 5
"""The broker refuses to delegate from a token whose chain already has this many records (wire contract)."""
DEFAULT_BUDGET = 300
DEFAULT_CALL_TTL = 60
REGISTRATION_TTL = 5
"""Seconds a freshly registered agent's own token may live; it is released at once, this bounds a failed release."""


class Pipeline:
    """Stages A → B → C…, each holding only what it declared, each handing on less.

    Args:
        stages: the stages, in order (names unique).
        max_depth: the broker's delegation depth limit (5 in the wire contract); a pipeline has at most this
            many stages, because the last stage's tool-call credentials carry one record per stage.

    Raises:
        ConfigurationError: no stages, a non-Stage, or two stages with one name.
        DelegationTooDeep: more stages than ``max_depth`` (nothing is ever sent to the broker).
    """

    def __init__(self, stages: Iterable[Stage], *, max_depth: int = MAX_DEPTH) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)
        if not self.stages:
            raise ConfigurationError("a pipeline needs at least one stage")
        names: set[str] = set()
        for item in self.stages:
            if not isinstance(item, Stage):
                raise ConfigurationError(f"stages must be Stage objects, not {type(item).__name__}")
            if item.name in names:
                raise ConfigurationError(f"two stages are named {item.name!r}")
            names.add(item.name)
        self.max_depth = positive_seconds(max_depth, "max_depth")  # a positive whole number, like a duration
        if len(self.stages) > self.max_depth:
            last = self.stages[-1].name
            raise DelegationTooDeep(
                f"a pipeline of {len(self.stages)} stages is too deep: the tool calls of its last stage "
                f"({last!r}) would need delegation chains of {len(self.stages)} records, and the broker allows "
                f"{self.max_depth}; merge stages or split the pipeline",
                stage=None,
                depth=len(self.stages),
                limit=self.max_depth,
            )

    def __repr__(self) -> str:
        return f"Pipeline({[s.name for s in self.stages]!r})"

    def _state(
        self,
        *,
        orch_id: str,
        task_id: str,
        ceiling: str | Sequence[str],
        budget: int,
        call_ttl: int,
        policy: Policy | None,
        sinks: Iterable[Sink],
        clock: Clock | None,
    ) -> RunState:
        return RunState.checked(
            self.stages,
            orch_id=orch_id,
            task_id=task_id,
            ceiling=ceiling,
            budget=budget,
            call_ttl=call_ttl,
            policy=policy,
            max_depth=self.max_depth,
            registration_ttl=REGISTRATION_TTL,
            sinks=sinks,
            clock=clock,
        )

    def run(
        self,
        broker: Broker,
        input: Any = None,
        *,
        orch_id: str,
        task_id: str,
        ceiling: str | Sequence[str],
        budget: int = DEFAULT_BUDGET,
        call_ttl: int = DEFAULT_CALL_TTL,
        policy: Policy | None = None,
        sinks: Iterable[Sink] = (),
        clock: Clock | None = None,
    ) -> PipelineResult:
        """Run every stage in order for one task (needs a :class:`Broker` and no ``async def`` stage).

        Args:
            broker: a broker with app credentials whose ceiling covers ``ceiling``.
            input: the first stage's ``ctx.input``.
            orch_id: the orchestrator, from the authenticated request (never from a model).
            task_id: the task, from the authenticated request (never from a model).
            ceiling: the task's scopes; the first stage's must be within them.
            budget: seconds the run may hold credentials for (stage tokens live at most this long).
            call_ttl: default lifetime of a tool call's credential (a stage's or tool's ``ttl`` overrides it).
            policy: how refused or failed tool calls reach a stage (default: told to the model).
            sinks: where to stream events as they happen (a list, JSON lines, Server-Sent Events…).
            clock: the trace's clocks (tests).

        Returns:
            The result: ``completed`` or ``halted``, the output, each stage's lineage, what was minted.

        Raises:
            DelegationRefused: a stage asked for more than its predecessor (or the ceiling) holds.
            DelegationTooDeep: a delegation would pass the depth limit.
            ConfigurationError: bad arguments, an ``async def`` stage, or a broker that is not a Broker.
            AgentWritError: the broker failed (unreachable, refused a registration…).
            Whatever a stage raised: re-raised as it was, once everything is released.
        """
        if not isinstance(broker, Broker):
            raise ConfigurationError(f"run() needs a Broker, not {type(broker).__name__} (use await arun(...))")
        for item in self.stages:
            if item.is_async:
                raise ConfigurationError(f"stage {item.name!r} is async: use await pipeline.arun(...)")
        state = self._state(
            orch_id=orch_id, task_id=task_id, ceiling=ceiling, budget=budget, call_ttl=call_ttl,
            policy=policy, sinks=sinks, clock=clock,
        )  # fmt: skip
        edge = SyncEdge(broker, state)
        try:
            return edge.drive(run_flow(state, input))
        finally:
            edge.drive(sweep_flow(state))  # only after an abnormal end: the flow already swept

    async def arun(
        self,
        broker: AsyncBroker,
        input: Any = None,
        *,
        orch_id: str,
        task_id: str,
        ceiling: str | Sequence[str],
        budget: int = DEFAULT_BUDGET,
        call_ttl: int = DEFAULT_CALL_TTL,
        policy: Policy | None = None,
        sinks: Iterable[Sink] = (),
        clock: Clock | None = None,
    ) -> PipelineResult:
        """See :meth:`run` (needs an :class:`AsyncBroker`; plain-function stages run in a worker thread)."""
        if not isinstance(broker, AsyncBroker):
            raise ConfigurationError(f"arun() needs an AsyncBroker, not {type(broker).__name__} (use run(...))")
        state = self._state(
            orch_id=orch_id, task_id=task_id, ceiling=ceiling, budget=budget, call_ttl=call_ttl,
            policy=policy, sinks=sinks, clock=clock,
        )  # fmt: skip
        edge = AsyncEdge(broker, state)
        try:
            return await edge.drive(run_flow(state, input))
        finally:
            with anyio.CancelScope(shield=True):
                await edge.drive(sweep_flow(state))
