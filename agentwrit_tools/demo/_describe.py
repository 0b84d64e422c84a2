"""One event, described for a person: the same words in the terminal and on the page.

:func:`describe` turns any trace event (the guard's, the pipeline's, the kit's) into a :class:`Line`: a label,
one sentence, the scopes involved, the agent's SPIFFE id and a level that picks the colour. The terminal output
and the HTML fragments both render Lines, so they cannot tell different stories about the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..trace import TraceEvent

__all__ = ["Level", "Line", "describe", "ms", "short_agent"]

Level = Literal["info", "ok", "refused", "warning", "muted"]


@dataclass(frozen=True, slots=True)
class Line:
    """An event as a person reads it.

    Attributes:
        type: the event's type (for CSS classes and tests).
        label: a short word for the left column (``minted``, ``denied``…).
        text: one sentence.
        level: ``ok``, ``refused``, ``warning``, ``info`` or ``muted``.
        tool: the tool, when the event is about a call.
        scopes: the scopes involved (shown as badges).
        held: for a denial, what the task held instead.
        agent: the SPIFFE id of the credential's holder, when there is one.
        jti: the credential's token id.
        chain: delegation lineage, oldest first.
        approval_id: for a request waiting for a person's approval, its id (a page answers it by this id).
        arguments: for such a request, the call's arguments as canonical JSON (what the person approves).
    """

    type: str
    label: str
    text: str
    level: Level = "info"
    tool: str | None = None
    scopes: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    agent: str | None = None
    jti: str | None = None
    chain: tuple[str, ...] = ()
    approval_id: str | None = None
    arguments: str | None = None


def ms(seconds: float | None) -> str:
    """``1.23 ms`` / ``2.4 s``; an em dash for nothing."""
    if seconds is None or seconds != seconds:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"


def short_agent(spiffe_id: str | None) -> str:
    """The tail of a SPIFFE id (``…/<task>/<instance>``), enough to tell agents apart on one screen."""
    if not spiffe_id:
        return ""
    parts = spiffe_id.split("/")
    return "…/" + "/".join(parts[-2:]) if len(parts) > 4 else spiffe_id


_DENIALS = {
    "unsafe_argument": "refused an unsafe argument",
    "outside_ceiling": "outside what the task holds",
    "budget_exhausted": "the task's time budget is spent",
    "unknown_tool": "not a tool this agent has",
    "broker_refused": "the broker refused",
    "scope_mismatch": "the issued token did not match",
    "approval_denied": "no approval",
}
_NOT_APPROVED = {
    "denied": "the approver said no",
    "timeout": "no answer in time",
    "arguments_changed": "the approval was for another call",
    "expired": "the approval was too old",
    "replayed": "the approval was already used",
    "no_approver": "nobody to ask",
    "approver_failed": "the approver failed",
    "not_recorded": "the audit log could not take it",
}


def _f(event: TraceEvent, name: str, default: Any = None) -> Any:
    return getattr(event, name, default)


def _minted(e: TraceEvent) -> Line:
    text = f"credential minted for exactly this call, ttl {_f(e, 'ttl')} s"
    return Line(e.type, "minted", text, "info", e.tool, e.scope, agent=e.agent_id, jti=e.jti)


def _executed(e: TraceEvent) -> Line:
    outcome = _f(e, "outcome")
    text = f"tool ran with it: {outcome} in {ms(_f(e, 'run_time'))}"
    if _f(e, "error"):
        text += f" ({_f(e, 'error')})"
    return Line(e.type, "ran", text, "ok" if outcome == "ok" else "warning", e.tool, e.scope, jti=e.jti)


def _released(e: TraceEvent) -> Line:
    text = f"released: dead at the broker {ms(_f(e, 'window'))} after it was minted"
    return Line(e.type, "released", text, "muted", e.tool, e.scope, agent=e.agent_id, jti=e.jti)


def _denied(e: TraceEvent) -> Line:
    reason = _DENIALS.get(str(_f(e, "reason")), str(_f(e, "reason")))
    text = f"denied, nothing minted ({reason}): {_f(e, 'message', '')}"
    return Line(e.type, "denied", text, "refused", e.tool, tuple(_f(e, "missing", ())) or e.scope)


def _rejected(e: TraceEvent) -> Line:
    return Line(e.type, "rejected", f"arguments refused, nothing minted: {_f(e, 'message', '')}", "refused", e.tool)


def _approval_requested(e: TraceEvent) -> Line:
    text = "needs a person's approval first: nothing is minted until they say yes to exactly this call"
    return Line(
        e.type, "approval", text, "warning", e.tool, e.scope,
        approval_id=_f(e, "approval_id"), arguments=_f(e, "arguments") or None,
    )  # fmt: skip


def _approval_granted(e: TraceEvent) -> Line:
    where = "the broker's audit log" if _f(e, "recorded") == "broker" else "this trace (the broker keeps none)"
    text = f"approved by {_f(e, 'approver')} for exactly this call; recorded in {where}"
    return Line(e.type, "approved", text, "ok", e.tool, e.scope)


def _approval_refused(e: TraceEvent) -> Line:
    reason = str(_f(e, "reason"))
    text = f"not approved ({_NOT_APPROVED.get(reason, reason)}): nothing minted"
    return Line(e.type, "refused", text, "refused", e.tool, e.scope)


def _delegated(e: TraceEvent) -> Line:
    text = f"delegated to {short_agent(e.agent_id)} by {short_agent(_f(e, 'delegator')) or 'the task'}"
    return Line(e.type, "delegated", text, "info", e.tool, e.scope, agent=e.agent_id, jti=e.jti)


def _stage_started(e: TraceEvent) -> Line:
    chain = tuple(_f(e, "chain", ()))
    depth = _f(e, "depth", 0)
    origin = "registered under the task ceiling" if not depth else f"delegated ({depth} hop(s) from the first stage)"
    text = f"stage {_f(e, 'stage')} starts with a token {origin}"
    return Line(e.type, "stage", text, "info", None, e.scope, agent=e.agent_id, jti=e.jti, chain=chain)


def _handoff_refused(e: TraceEvent) -> Line:
    who = "the broker" if _f(e, "by_broker") else "the pipeline"
    text = f"handoff to stage {_f(e, 'stage')} refused by {who}: it asked for more than it was given"
    return Line(e.type, "refused", text, "refused", None, tuple(_f(e, "missing", ())), held=tuple(_f(e, "held", ())))


def _note(e: TraceEvent) -> Line:
    level = _f(e, "level", "info")
    label = {"ok": "check", "refused": "refused", "warning": "warning"}.get(level, "step")
    return Line(e.type, label, str(_f(e, "text", "")), level, e.tool, e.scope, agent=e.agent_id, jti=e.jti)


def _answer(e: TraceEvent) -> Line:
    who = _f(e, "agent") or "agent"
    return Line(e.type, who, str(_f(e, "text", "")), "info")


def _token_checked(e: TraceEvent) -> Line:
    alive = bool(_f(e, "alive"))
    text = "still valid at the broker!" if alive else "validated after the run: invalid (dead)"
    return Line(e.type, "checked", text, "warning" if alive else "ok", None, e.scope, agent=e.agent_id, jti=e.jti)


def _final_check(e: TraceEvent) -> Line:
    live, checked = _f(e, "live_credentials", 0), _f(e, "tokens_checked", 0)
    verdict = "every credential is dead" if live == 0 else f"{live} credential(s) still alive"
    text = f"final check: {live} of {checked} token(s) the run saw still valid — {verdict}"
    return Line(e.type, "final", text, "ok" if live == 0 else "warning")


def _launch_token(e: TraceEvent) -> Line:
    how = "fetched ahead of the calls" if _f(e, "prefetched") else "fetched by a call"
    end = "is revoked when the task ends" if _f(e, "revocable") else "cannot be revoked, so it is short-lived"
    text = f"the task's launch token ({how}): the ceiling, held by the broker; it {end}"
    return Line(e.type, "launch", text, "muted", e.tool, e.scope)


def _launch_end(e: TraceEvent) -> Line:
    if _f(e, "error"):
        return Line(
            e.type, "warning", f"launch tokens not revoked ({_f(e, 'error')}): they die at their ttl", "warning"
        )
    left = _f(e, "unrevocable", 0)
    text = f"task ended: {_f(e, 'revoked', 0)} unused launch token(s) revoked" + (
        f", {left} left to die on their own within seconds" if left else ""
    )
    return Line(e.type, "launch", text, "muted", e.tool, e.scope)


def _simple(label: str, level: Level, text: Callable[[TraceEvent], str]) -> Callable[[TraceEvent], Line]:
    def build(e: TraceEvent) -> Line:
        return Line(e.type, label, text(e), level, e.tool, e.scope, agent=e.agent_id, jti=e.jti)

    return build


_BUILDERS: dict[str, Callable[[TraceEvent], Line]] = {
    "approval_requested": _approval_requested,
    "approval_granted": _approval_granted,
    "approval_refused": _approval_refused,
    "minted": _minted,
    "executed": _executed,
    "released": _released,
    "denied": _denied,
    "rejected": _rejected,
    "delegated": _delegated,
    "stage_started": _stage_started,
    "handoff_refused": _handoff_refused,
    "note": _note,
    "answer": _answer,
    "token_checked": _token_checked,
    "final_check": _final_check,
    "scenario_started": _simple("scenario", "info", lambda e: f"{_f(e, 'title')}: {_f(e, 'summary')}"),
    "mint_failed": _simple("failed", "warning", lambda e: f"minting failed ({_f(e, 'error')}); the tool did not run"),
    "release_failed": _simple(
        "warning", "warning", lambda e: f"release failed ({_f(e, 'error')}): the token lives until its exp"
    ),
    "renewed": _simple("renewed", "info", lambda e: f"renewed: fresh jti, the old one ({_f(e, 'previous_jti')}) dead"),
    "revoked": _simple(
        "revoked", "refused", lambda e: f"operator revoked level={_f(e, 'level')}: {_f(e, 'count')} token(s)"
    ),
    "expired": _simple("expired", "muted", lambda e: "never released: died on its own at its exp"),
    "launch_token_issued": _launch_token,
    "launch_tokens_ended": _launch_end,
    "pipeline_started": _simple(
        "pipeline", "info", lambda e: "pipeline starts: " + " → ".join(_f(e, "stages", ())) + " under the ceiling"
    ),
    "stage_finished": _simple(
        "stage", "muted", lambda e: f"stage {_f(e, 'stage')} finished: {_f(e, 'outcome')} in {ms(_f(e, 'run_time'))}"
    ),
    "halted": _simple("halted", "info", lambda e: f"stage {_f(e, 'stage')} ended the pipeline here: {_f(e, 'reason')}"),
    "pipeline_finished": _simple(
        "pipeline",
        "muted",
        lambda e: (
            f"pipeline {_f(e, 'status')}: {_f(e, 'minted')} credential(s) minted, "
            + ("all released" if not _f(e, "release_failed") else f"{_f(e, 'release_failed')} release(s) failed")
        ),
    ),
}


def describe(event: TraceEvent) -> Line | None:
    """The event as a :class:`Line`; ``None`` for bookkeeping events a person need not see."""
    if event.type == "scenario_finished":
        return None
    build = _BUILDERS.get(event.type)
    if build is None:
        return Line(event.type, event.type, event.type.replace("_", " "), "info", event.tool, event.scope)
    return build(event)
