"""What a run returns: its status and output, each stage's lineage, and what it minted — never a token.

A run that stops on an error re-raises it instead (after releasing everything); its events are still in the
sinks it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..client import Claims
from ..trace import ExposureReport, TraceEvent
from ._ledger import MintedRecord

__all__ = ["PipelineResult", "StageRecord"]


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One stage that got a token and ran.

    Attributes:
        name: the stage.
        index: its position.
        claims: its token's verified claims (``delegation_chain`` shows where its authority came from).
        outcome: ``ok`` or ``halted`` (a run that errs re-raises instead of returning records).
        run_time: seconds its body ran.
    """

    name: str
    index: int
    claims: Claims = field(repr=False)
    outcome: str
    run_time: float

    @property
    def agent_id(self) -> str:
        return self.claims.sub

    @property
    def jti(self) -> str:
        return self.claims.jti

    @property
    def scope(self) -> tuple[str, ...]:
        return tuple(self.claims.scope)

    @property
    def lineage(self) -> tuple[str, ...]:
        """The agents the stage's authority passed through, oldest first, ending with the stage's own."""
        return (*(record.agent for record in self.claims.delegation_chain), self.claims.sub)


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """How a run ended.

    Attributes:
        status: ``completed`` (every stage ran) or ``halted`` (a stage stopped the run).
        output: the last stage's return value when completed; None when halted.
        halted_by: the stage that halted, if one did.
        reason: the reason it gave.
        stages: the stages that ran, in order.
        minted: every credential the run minted (stage tokens, per-call credentials, agent registrations), all
            released unless a release failed (then ``released`` is False and it dies at its ``exp``).
        events: the run's trace, in order.
    """

    status: Literal["completed", "halted"]
    output: Any
    halted_by: str | None
    reason: str | None
    stages: tuple[StageRecord, ...]
    minted: tuple[MintedRecord, ...]
    events: tuple[TraceEvent, ...] = field(repr=False)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def halted(self) -> bool:
        return self.status == "halted"

    def stage(self, name: str) -> StageRecord:
        """The record of stage ``name`` (KeyError when it never ran)."""
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(name)

    def exposure(self) -> ExposureReport:
        """The exposure report of the run's tool calls (stage tokens are not calls and are left out)."""
        return ExposureReport.from_events(self.events)
