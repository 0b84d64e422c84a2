"""Scenarios and the context a scenario body runs in.

A :class:`Scenario` is a named story a demo tells (``cross-patient``, ``refund``…): a function of one
:class:`ScenarioRun`. The run gives the body everything it needs, already wired to the demo's trace: guard tasks
and pipeline sinks whose events carry the scenario's name, a client for the protected API that records every
credential it presents, the model, and ``note``/``expect``/``answer`` for narrating. Free questions asked in a UI
run the same way, so a question gets the same live trace and the same final check as a scripted scenario.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..client import TaskLauncher
from ..guard import Approver, Policy, ScopedTool, Task
from ..trace import ExposureReport, Trace, TraceEvent
from ._events import Answer, Note, NoteLevel
from ._witness import BackendClient, TokenWitness

if TYPE_CHECKING:
    from ..adapters.openai import LoopResult
    from ._stack import DemoStack

__all__ = ["Scenario", "ScenarioRun"]

_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
E = TypeVar("E", bound=TraceEvent)

Output = Callable[[str, TraceEvent], None]
"""Where a run's events go as they happen: ``output(scenario_name, event)``."""


@dataclass(frozen=True)
class Scenario:
    """One story a demo tells, runnable from the terminal (``--scenario NAME``) and from a button in its UI.

    Attributes:
        name: kebab-case, unique within the demo.
        title: the button's and the heading's text.
        summary: one sentence: what a person should see happen.
        run: the body.
        prompt: the question it asks, when it asks one (a UI shows it; quick-fill buttons fill it in).
    """

    name: str
    title: str
    summary: str
    run: Callable[[ScenarioRun], None] = field(repr=False)
    prompt: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"scenario name {self.name!r} must be kebab-case")


class ScenarioRun:
    """What a scenario body gets. Every event it causes reaches ``output`` and is kept for the exposure report.

    Attributes:
        name: the scenario's name (stamped on every output line).
        stack: the running demo: broker clients, protected API, model.
        witness: every token the run saw, for the final check.
        api: the protected API's client; it presents a credential and records it with ``witness``.
        run_id: short and unique; part of every task id the run creates.
        failures: expectations that did not hold (a scenario with any fails the terminal run).
    """

    def __init__(self, stack: DemoStack, name: str, output: Output) -> None:
        self.name = name
        self.stack = stack
        self.witness = TokenWitness()
        self.api = BackendClient(stack.backend_url, self.witness)
        self.run_id = uuid.uuid4().hex[:8]
        self.failures: list[str] = []
        self._output = output
        self._events: list[TraceEvent] = []
        self.trace = Trace(task_id=self.task_id(), orch_id=stack.demo.orch_id, sinks=[self.sink])

    # -- events -------------------------------------------------------------------------------------------------

    def sink(self, event: TraceEvent) -> None:
        """The sink every task and pipeline of this run writes to."""
        self._events.append(event)
        self._output(self.name, event)

    @property
    def events(self) -> list[TraceEvent]:
        return list(self._events)

    def exposure(self) -> ExposureReport:
        return ExposureReport.from_events(self._events)

    def emit(self, kind: type[E], **fields: Any) -> E:
        """Emit a kit event (or any trace event) on the run's own trace."""
        return self.trace.emit(kind, **fields)

    def note(self, text: str, level: NoteLevel = "info", **ids: Any) -> None:
        """Narrate a step (``ids``: ``jti``, ``agent_id``, ``scope``, ``tool`` when it is about a credential)."""
        self.emit(Note, text=text, level=level, **ids)

    def expect(self, holds: bool, ok: str, failed: str, **ids: Any) -> bool:
        """Check what the scenario promises; the note says which way it went and a failure is remembered."""
        if holds:
            self.note(ok, "ok", **ids)
        else:
            self.failures.append(failed)
            self.note(failed, "warning", **ids)
        return holds

    def answer(self, text: str, *, agent: str = "", stand_in: bool | None = None) -> None:
        """Show the final answer (``stand_in`` defaults to whether the stack runs the stand-in model)."""
        self.emit(Answer, text=text, agent=agent, stand_in=self.stack.model.stand_in if stand_in is None else stand_in)

    # -- tasks --------------------------------------------------------------------------------------------------

    def task_id(self, part: str = "") -> str:
        """A task id unique to this run: ``<scenario>-<run id>[-<part>]``."""
        return f"{self.name}-{self.run_id}" + (f"-{part}" if part else "")

    def task(
        self,
        ceiling: str | Sequence[str],
        *,
        tools: Iterable[ScopedTool] = (),
        part: str = "",
        ttl: int = 30,
        budget: int = 120,
        policy: Policy | None = None,
    ) -> Task:
        """A guard task for this run (sync broker), its events on this run's trace output."""
        return Task(
            self.stack.broker,
            orch_id=self.stack.demo.orch_id,
            task_id=self.task_id(part),
            ceiling=ceiling,
            tools=tools,
            ttl=ttl,
            budget=budget,
            policy=policy,
            sinks=[self.sink],
        )

    @property
    def approver(self) -> Approver:
        """Who answers this run's approval requests (the stack's: a flag in the terminal, a person on the page)."""
        return self.stack.approver

    def launcher(self, task: Task) -> TaskLauncher:
        """The task's broker-side ceiling, for minting by hand (scenarios that show what the guard does not)."""
        if not isinstance(task.launcher, TaskLauncher):
            raise TypeError("ScenarioRun tasks are sync; this one has an async launcher")
        return task.launcher

    def chat(
        self,
        task: Task,
        messages: Sequence[Mapping[str, Any]],
        *,
        agent: str,
        tools: Iterable[ScopedTool] | None = None,
        max_steps: int = 6,
    ) -> LoopResult:
        """Let the model work on ``messages`` with ``task``'s tools (every call guarded) and show its answer."""
        from ..adapters.openai import run_chat_loop

        result = run_chat_loop(
            self.stack.openai, task, model=self.stack.model.model, messages=messages, tools=tools, max_steps=max_steps
        )
        text = result.output_text or "(the model stopped without answering: too many tool calls)"
        self.answer(text, agent=agent)
        return result

    def close(self) -> None:
        self.api.close()
