"""The pipeline: stages of agents handing each other delegated tokens that can only narrow (layer 6 of the design).

Multi-agent work (triage → knowledge → response; clinical → prescription) is where authority escalates in
practice: one agent hands its credential to the next. Here the safe way is the easy way:

* :class:`Stage` / :func:`stage` — a step (a plain function, or an LLM agent through either adapter via
  ``ctx.task``) and the scope it needs, fixed or computed from its input.
* :class:`Pipeline` — runs the stages for one task: the first stage's agent is registered under the task ceiling;
  each next stage gets a token *delegated* from the previous one (narrowing only; the broker refuses widening);
  each tool call gets its own credential delegated from its stage's token, so ``delegation_chain`` in its
  verified claims shows the lineage; and every credential the run minted is released when it ends — normally,
  by :class:`Halt`, or by an exception.
* :class:`StageContext` — what a stage's body gets: ``input``, ``task``, ``call``/``acall``, ``halt``.
* :class:`PipelineResult` — status, output, each stage's lineage, every credential minted (never a token).
* :class:`Relay` — the same chain built while it runs, for frameworks whose model picks the next agent
  (handoffs): ``await relay.hand_to(name, scope)`` delegates from the current holder, narrowing only.
* Events (``pipeline_started``, ``stage_started``, ``stage_finished``, ``halted``, ``handoff_refused``,
  ``pipeline_finished``) go into the same trace as the guard's per-call events, for any sink — Server-Sent
  Events included — to render live.

::

    pipeline = Pipeline([
        Stage("triage", ["read:tickets:*", "read:kb:*", "write:replies:*"], triage, tools=[read_ticket]),
        Stage("knowledge", ["read:kb:*", "write:replies:*"], knowledge, tools=[search_kb]),
        Stage("response", lambda found: f"write:replies:{found['ticket']}", respond, tools=[post_reply]),
    ])
    result = pipeline.run(broker, ticket, orch_id="support", task_id=request_id, ceiling=app_ceiling)

The flows are written once, free of I/O (``_flow``); a sync and an async edge carry them out (``_drivers``).
"""

from __future__ import annotations

from ._context import StageContext
from ._errors import DelegationRefused, DelegationTooDeep, PipelineError
from ._events import (
    PIPELINE_EVENT_TYPES,
    Halted,
    HandoffRefused,
    PipelineFinished,
    PipelineStarted,
    StageFinished,
    StageStarted,
)
from ._ledger import MintedRecord
from ._pipeline import DEFAULT_BUDGET, DEFAULT_CALL_TTL, MAX_DEPTH, Pipeline
from ._relay import Relay
from ._result import PipelineResult, StageRecord
from ._stage import Halt, Stage, stage

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_CALL_TTL",
    "MAX_DEPTH",
    "PIPELINE_EVENT_TYPES",
    "DelegationRefused",
    "DelegationTooDeep",
    "Halt",
    "Halted",
    "HandoffRefused",
    "MintedRecord",
    "Pipeline",
    "PipelineError",
    "PipelineFinished",
    "PipelineResult",
    "PipelineStarted",
    "Relay",
    "Stage",
    "StageContext",
    "StageFinished",
    "StageRecord",
    "StageStarted",
    "stage",
]
