"""What one run knows, free of I/O: its plan, its budget, and what each stage holds.

A :class:`RunState` is built per run (a :class:`~agentwrit_tools.pipeline.Pipeline` is a reusable declaration);
the flows read it and the edges hand it credentials through the ledger. A :class:`StageHold` is a stage's side
of the chain: its verified token and the launcher bounded by its scope, under which the agents it delegates to
are registered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client import Claims
from ..guard import Policy
from ..guard._validate import checked_id, checked_policy, positive_seconds
from ..trace import Clock, Sink, Trace
from ._ledger import Ledger
from ._stage import Stage, scopes_of

__all__ = ["RunState", "StageHold"]


@dataclass(frozen=True, slots=True)
class StageHold:
    """A stage's token and the launcher bounded by its scope.

    Attributes:
        stage: the stage.
        index: its position.
        scopes: its verified scope.
        credential: its token (a Credential or AsyncCredential).
        launcher: a launcher whose ``allowed_scope`` is ``scopes``: agents this stage delegates to are registered
            under it, so the broker refuses an agent wider than the stage before any delegation is asked for.
    """

    stage: Stage
    index: int
    scopes: tuple[str, ...]
    credential: Any = field(repr=False)
    launcher: Any = field(repr=False)

    @property
    def claims(self) -> Claims:
        claims: Claims = self.credential.claims
        return claims

    @property
    def agent_id(self) -> str:
        return self.claims.sub

    @property
    def depth(self) -> int:
        return self.claims.depth


@dataclass
class RunState:
    """One run of a pipeline.

    Attributes:
        stages: the stages, in order.
        orch_id: the orchestrator (from the authenticated request).
        task_id: the task (from the authenticated request).
        ceiling: the task's scopes; the first stage's must be within them.
        budget: seconds the run may hold credentials for.
        call_ttl: default lifetime of a tool call's credential.
        policy: default policy for the stages' tool calls.
        max_depth: the broker's delegation depth limit.
        registration_ttl: lifetime of the token an agent gets when it registers (it is released at once).
        trace: where every event of the run goes.
        ledger: every credential the run minted.
        clock: monotonic seconds (the trace's).
        launcher: the task launcher (``allowed_scope`` = ceiling), set by the first effect.
        launchers: every launcher the run opened (the task's and each stage's), whose launch tokens end with it.
    """

    stages: tuple[Stage, ...]
    orch_id: str
    task_id: str
    ceiling: tuple[str, ...]
    budget: int
    call_ttl: int
    policy: Policy
    max_depth: int
    registration_ttl: int
    trace: Trace
    ledger: Ledger = field(default_factory=Ledger)
    clock: Callable[[], float] = field(default=lambda: 0.0)
    launcher: Any = field(default=None, repr=False)
    launchers: list[Any] = field(default_factory=list, repr=False)
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.clock = self.trace.now
        self._deadline = self.clock() + self.budget

    @classmethod
    def checked(
        cls,
        stages: tuple[Stage, ...],
        *,
        orch_id: str,
        task_id: str,
        ceiling: str | Sequence[str],
        budget: int,
        call_ttl: int,
        policy: Policy | None,
        max_depth: int,
        registration_ttl: int,
        sinks: Iterable[Sink] = (),
        clock: Clock | None = None,
    ) -> RunState:
        """A run's state from a caller's arguments, each checked (ConfigurationError) — ids, ceiling, durations."""
        orch, task = checked_id(orch_id, "orch_id"), checked_id(task_id, "task_id")
        return cls(
            stages=stages,
            orch_id=orch,
            task_id=task,
            ceiling=scopes_of(ceiling, "the task ceiling"),
            budget=positive_seconds(budget, "budget"),
            call_ttl=positive_seconds(call_ttl, "call_ttl"),
            policy=checked_policy(policy),
            max_depth=max_depth,
            registration_ttl=registration_ttl,
            trace=Trace(task_id=task, orch_id=orch, sinks=sinks, clock=clock),
        )

    def remaining(self) -> int:
        """Whole seconds left in the budget (0 when it is spent)."""
        return max(0, math.floor(self._deadline - self.clock()))
