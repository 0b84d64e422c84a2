"""The pipeline's trace events: the run's and each stage's start and end, halts and refused handoffs.

They are :class:`~agentwrit_tools.trace.TraceEvent` subclasses emitted into the same :class:`Trace` as the guard's
per-call events, so one stream — a list, JSON lines, or Server-Sent Events for a live page — shows a run in
order: ``pipeline_started``, ``stage_started`` (with the stage token's lineage), the stage's ``delegated`` /
``minted`` / ``executed`` / ``released`` per tool call, ``stage_finished``, the next stage's ``delegated``
handoff, …, ``halted`` or ``handoff_refused`` when it stops early, the stage tokens' ``released``, and
``pipeline_finished``. Like every event they name tokens by ``jti`` and ``agent_id`` only.

Handoffs and per-call delegations use the trace's own :class:`~agentwrit_tools.trace.Delegated` event: a
handoff's ``jti`` is the one the following ``stage_started`` carries, a call's is the one its ``minted`` carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..trace import TraceEvent

__all__ = [
    "PIPELINE_EVENT_TYPES",
    "Halted",
    "HandoffRefused",
    "PipelineFinished",
    "PipelineStarted",
    "PipelineStatus",
    "StageFinished",
    "StageOutcomeKind",
    "StageStarted",
]

StageOutcomeKind = Literal["ok", "halted", "error", "cancelled"]
PipelineStatus = Literal["completed", "halted", "error", "cancelled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineStarted(TraceEvent):
    """A run began; nothing is minted yet. ``scope`` is the task ceiling.

    Attributes:
        stages: the stages' names, in order.
        budget: seconds the run may hold credentials for.
    """

    type: ClassVar[str] = "pipeline_started"

    stages: tuple[str, ...]
    budget: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StageStarted(TraceEvent):
    """A stage holds its token and its body is about to run. ``jti``/``agent_id``/``scope`` are the stage token's.

    Attributes:
        stage: the stage's name.
        index: its position (0 for the first).
        depth: records in its token's delegation chain (0 for the first stage).
        chain: the agents its authority came through, oldest first (the chain records' ``agent``).
        exp: the stage token's ``exp``.
    """

    type: ClassVar[str] = "stage_started"

    stage: str
    index: int
    depth: int
    chain: tuple[str, ...] = ()
    exp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StageFinished(TraceEvent):
    """A stage's body returned, halted, raised or was cancelled. Its token lives on until the run ends.

    Attributes:
        stage: the stage's name.
        index: its position.
        outcome: ``ok``, ``halted``, ``error`` or ``cancelled``.
        run_time: seconds the body ran.
        error: the exception's class name for ``error``/``cancelled`` (never its text).
    """

    type: ClassVar[str] = "stage_finished"

    stage: str
    index: int
    outcome: StageOutcomeKind
    run_time: float
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Halted(TraceEvent):
    """A stage stopped the run on purpose; nothing downstream is minted.

    Attributes:
        stage: the stage that halted.
        reason: the reason it gave (written by the stage's author, not by a model).
    """

    type: ClassVar[str] = "halted"

    stage: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoffRefused(TraceEvent):
    """A stage asked for more than its predecessor holds; nothing was minted for it. ``scope`` is what it asked.

    Attributes:
        stage: the refused stage.
        source: the stage it would have received authority from (None: the task ceiling).
        held: what ``source`` holds.
        missing: the asked-for scopes ``held`` does not cover.
        by_broker: the broker refused it (rather than the pipeline's own check).
    """

    type: ClassVar[str] = "handoff_refused"

    stage: str
    source: str | None
    held: tuple[str, ...]
    missing: tuple[str, ...]
    by_broker: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineFinished(TraceEvent):
    """The run is over and every credential it minted has been released (or its failure recorded).

    Attributes:
        status: ``completed``, ``halted``, ``error`` or ``cancelled``.
        minted: credentials the run minted (stage tokens, per-call credentials, agent registrations).
        release_failed: how many of them could not be released (they die at their ``exp``).
        error: the exception's class name when ``status`` is ``error``/``cancelled``.
    """

    type: ClassVar[str] = "pipeline_finished"

    status: PipelineStatus
    minted: int
    release_failed: int = 0
    error: str | None = None


PIPELINE_EVENT_TYPES: dict[str, type[TraceEvent]] = {
    cls.type: cls for cls in (PipelineStarted, StageStarted, StageFinished, Halted, HandoffRefused, PipelineFinished)
}
"""The pipeline's own event classes by ``type`` (the guard's are in ``agentwrit_tools.trace.EVENT_TYPES``)."""
