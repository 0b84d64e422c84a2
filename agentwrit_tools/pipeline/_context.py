"""``StageContext``: what a stage's body gets — its input, its guard task, and a way to halt.

Tool calls go through ``ctx.call``/``ctx.acall`` (or ``ctx.task`` handed to an adapter), which run the guard's
per-call flow unchanged: schema validation, injection-safe scope rendering, the check against the stage's scope,
a credential for exactly the call's scope — delegated from the stage's token — gated on its verified claims and
released in ``finally``. The stage's own token is reachable as :attr:`StageContext.credential` for code that
needs its claims or wants to delegate by hand; it holds the whole stage's scope, so it is not for tools and
never for a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from ..client import AsyncCredential, Claims, Credential
from ..guard import ScopedTool, Task, ToolResult
from ._stage import Halt, Stage
from ._state import RunState, StageHold

__all__ = ["StageContext"]


class StageContext:
    """One stage's view of the run.

    Attributes:
        stage: the stage being run.
        index: its position (0 for the first).
        input: the previous stage's output (the run's input for the first stage).
        task: a guard :class:`~agentwrit_tools.Task` whose ceiling is the stage's scope and whose calls get
            credentials delegated from the stage's token; give it to the OpenAI or LangChain adapter.
        orch_id: the run's orchestrator.
        task_id: the run's task.
    """

    def __init__(self, stage: Stage, hold: StageHold, task: Task, value: Any, run: RunState) -> None:
        self.stage = stage
        self.index = hold.index
        self.input = value
        self.task = task
        self.orch_id = run.orch_id
        self.task_id = run.task_id
        self._hold = hold
        self._run = run

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def claims(self) -> Claims:
        """The stage token's verified claims."""
        return self._hold.claims

    @property
    def scope(self) -> tuple[str, ...]:
        """What the stage holds (its token's verified scope)."""
        return self._hold.scopes

    @property
    def depth(self) -> int:
        """Records in the stage token's delegation chain."""
        return self._hold.depth

    @property
    def lineage(self) -> tuple[str, ...]:
        """The agents the stage's authority passed through, oldest first, ending with the stage's own."""
        return (*(record.agent for record in self.claims.delegation_chain), self.claims.sub)

    @property
    def credential(self) -> Credential | AsyncCredential:
        """The stage's own token. It holds the stage's whole scope: never hand it to a tool or a model."""
        credential: Credential | AsyncCredential = self._hold.credential
        return credential

    def remaining(self) -> int:
        """Whole seconds left in the run's budget."""
        return self._run.remaining()

    def halt(self, reason: str = "") -> NoReturn:
        """Stop the run after this stage: nothing downstream is minted."""
        raise Halt(reason)

    def call(
        self,
        tool: ScopedTool | str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        call_id: str | None = None,
        tools: Iterable[ScopedTool] | None = None,
    ) -> ToolResult:
        """One guarded tool call with its own delegated credential (sync runs); see :meth:`Task.call`."""
        return self.task.call(tool, arguments, call_id=call_id, tools=tools)

    async def acall(
        self,
        tool: ScopedTool | str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        call_id: str | None = None,
        tools: Iterable[ScopedTool] | None = None,
    ) -> ToolResult:
        """See :meth:`call` (async runs)."""
        return await self.task.acall(tool, arguments, call_id=call_id, tools=tools)

    def __repr__(self) -> str:
        return f"StageContext(stage={self.stage.name!r}, index={self.index}, scope={list(self.scope)!r})"
