"""The demo kit's own trace events: narration, answers, post-run token checks and the final verdict.

They extend the trace vocabulary (``minted``, ``denied``, ``released``…) with what a demo shows besides tool
calls. Like every trace event they carry ids (``jti``, ``agent_id``) and never a token, so the same sinks —
JSON lines, the terminal, Server-Sent Events — can ship them anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..trace import TraceEvent

__all__ = ["Answer", "FinalCheck", "Note", "NoteLevel", "ScenarioFinished", "ScenarioStarted", "TokenChecked"]

NoteLevel = Literal["info", "ok", "refused", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioStarted(TraceEvent):
    """A scenario (or a free question) began.

    Attributes:
        title: what it is called on screen.
        summary: one sentence on what it shows.
    """

    type: ClassVar[str] = "scenario_started"

    title: str
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(TraceEvent):
    """A step the scenario narrates (an operator action, a broker answer); never model output or a token.

    Attributes:
        text: one line for a person.
        level: ``info``, ``ok`` (an expected good outcome), ``refused`` (a refusal the demo expects) or ``warning``.
    """

    type: ClassVar[str] = "note"

    text: str
    level: NoteLevel = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(TraceEvent):
    """The agent's final answer to the person who asked.

    Attributes:
        text: the answer (from the model, or the app's own plain reply).
        agent: which agent answered (e.g. ``clinical``).
        stand_in: the answer came from the rule-based stand-in, not a language model.
    """

    type: ClassVar[str] = "answer"

    text: str
    agent: str = ""
    stand_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenChecked(TraceEvent):
    """One token the scenario saw, validated by the broker after the scenario ended.

    Attributes:
        alive: the broker still accepts it (``POST /v1/token/validate`` said valid).
    """

    type: ClassVar[str] = "token_checked"

    alive: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalCheck(TraceEvent):
    """The last event of every scenario: how many of the tokens it saw the broker still accepts.

    Attributes:
        scenario: the scenario's name.
        live_credentials: tokens still valid (0 is the promise).
        tokens_checked: distinct tokens validated.
        wall_time: seconds the scenario took, check included.
    """

    type: ClassVar[str] = "final_check"

    scenario: str
    live_credentials: int
    tokens_checked: int
    wall_time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioFinished(TraceEvent):
    """The scenario's exposure summary, sent just before its final check.

    Attributes:
        credentials: credentials minted for tool calls.
        denied: calls refused before anything was minted.
        window_p50_ms: median credential lifetime (mint → release), milliseconds.
        run_p50_ms: median tool run time, milliseconds.
        error: the class name of an unexpected failure, if the scenario broke ("" when it ran through).
    """

    type: ClassVar[str] = "scenario_finished"

    credentials: int
    denied: int
    window_p50_ms: float | None
    run_p50_ms: float | None
    error: str = ""
