"""The per-call flow of ``DESIGN.md``, written once and free of I/O.

``call_flow`` is a generator: it validates, renders, checks the ceiling and decides, and it *yields* the things
it cannot do itself (:class:`Mint`, :class:`Run`, :class:`Release`, and for a call that needs a person's yes
:class:`Ask` and :class:`RecordApproval`) to a driver — sync or async — that sends back outcomes. Unit tests
drive it with hand-made outcomes and no broker at all.

The invariants it owns:

1. Invalid arguments → a ``rejected`` result; nothing rendered, nothing minted.
2. Scopes are rendered from the validated values with :mod:`agentwrit_tools.scopes` (unsafe values refused).
3. Scopes outside the task ceiling → ``denied`` ("access denied: needs X, task holds Y"); nothing minted, the
   body never runs. The broker enforces the same ceiling again (the launcher's ``allowed_scope``), so a bug
   here turns into a ``broker_refused`` denial rather than a wider credential.
4. The TTL asked for is ≤ the tool's limit and ≤ the task's remaining budget.
4a. A call that needs approval (its tool says so, or a scope matches the policy's patterns) is minted only after
   an approval bound to exactly this tool, these arguments and these scopes, used once and fresh
   (:mod:`._approval`); anything else → ``denied`` (``approval_denied``), nothing minted.
5. The body runs only after the *verified* claims matched exactly: same scopes (as a sorted list, so nothing
   extra and nothing missing), same task and orchestrator, and — for a tool bound to a resource — that
   resource in ``aud``. A mismatch is released and denied.
6. After a mint, a release is always yielded — whatever the run's outcome — and its failure is recorded
   (``release_failed``, with the ``exp`` the token dies at), never raised over the tool's result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..client import Claims
from ..errors import (
    AccessDenied,
    AudienceMismatch,
    InvalidToolArguments,
    ScopeMismatch,
    ScopeViolation,
    TaskBudgetExhausted,
    ToolTimeout,
    UnsafeArgumentError,
)
from ..scopes import uncovered
from ..trace import (
    ApprovalGranted,
    ApprovalRefused,
    ApprovalRequested,
    Denied,
    Executed,
    Expired,
    Minted,
    MintFailed,
    Rejected,
    Released,
    ReleaseFailed,
    Trace,
)
from . import _messages as messages
from ._approval import (
    SHARED_LEDGER,
    ApprovalAnswer,
    ApprovalLedger,
    ApprovalRequest,
    ApprovalRules,
    Ask,
    RecordApproval,
    RecordOutcome,
    Verdict,
    judge,
)
from ._effects import CallFlow, HeldCredential, Mint, MintOutcome, Release, ReleaseOutcome, Run, RunOutcome
from ._policy import Policy
from ._result import ErrorKind, ToolResult
from ._schema import ArgumentProblems, Bound
from ._tool import ScopedTool

__all__ = ["CallContext", "LiveCall", "call_flow", "record_expired", "record_release", "unknown_tool"]


@dataclass(frozen=True)
class CallContext:
    """The task's side of a call — from the authenticated request, never from the model."""

    orch_id: str
    task_id: str
    ceiling: tuple[str, ...]
    default_ttl: int
    remaining: Callable[[], float]
    trace: Trace
    policy: Policy
    ledger: ApprovalLedger = SHARED_LEDGER


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A minted credential not yet released, with what its release event needs."""

    credential: Any
    tool: str
    call_id: str
    scope: tuple[str, ...]
    minted_at: float


def _deny(
    ctx: CallContext,
    tool: str,
    call_id: str,
    reason: ErrorKind,
    message: str,
    *,
    scopes: tuple[str, ...] = (),
    missing: tuple[str, ...] = (),
    jti: str | None = None,
    agent_id: str | None = None,
) -> ToolResult:
    ctx.trace.emit(
        Denied,
        tool=tool,
        call_id=call_id,
        scope=scopes,
        jti=jti,
        agent_id=agent_id,
        reason=reason,
        missing=missing,
        message=message,
    )
    error = AccessDenied(
        message, tool=tool, call_id=call_id, reason=reason, required=scopes, missing=missing, held=ctx.ceiling
    )
    return ToolResult(tool, call_id, False, True, reason, message, message, scopes, jti, agent_id, error)


def unknown_tool(ctx: CallContext, name: str, call_id: str, known: Iterable[str]) -> ToolResult:
    """A model asked for a tool that does not exist: a denial; nothing minted."""
    return _deny(ctx, name[:64], call_id, "unknown_tool", messages.unknown_tool(name, known))


def record_release(trace: Trace, live: LiveCall, claims: Claims, outcome: ReleaseOutcome) -> None:
    """A ``released`` event (window = release - mint), or ``release_failed`` with the ``exp`` it dies at."""
    common: dict[str, Any] = {
        "tool": live.tool,
        "call_id": live.call_id,
        "scope": live.scope,
        "jti": claims.jti,
        "agent_id": claims.sub,
    }
    if outcome.error is None:
        trace.emit(
            Released, at=outcome.at, window=outcome.at - live.minted_at, already_dead=not outcome.killed, **common
        )
    else:
        trace.emit(ReleaseFailed, at=outcome.at, exp=claims.exp, error=type(outcome.error).__name__, **common)


def record_expired(trace: Trace, live: LiveCall, claims: Claims) -> None:
    """An ``expired`` event: a credential whose release never went through is dead by its ``exp`` now."""
    trace.emit(
        Expired,
        tool=live.tool,
        call_id=live.call_id,
        scope=live.scope,
        jti=claims.jti,
        agent_id=claims.sub,
        exp=claims.exp,
    )


def _matches(claims: Claims, scopes: tuple[str, ...], ctx: CallContext) -> bool:
    return sorted(claims.scope) == sorted(scopes) and claims.task_id == ctx.task_id and claims.orch_id == ctx.orch_id


def _bound(claims: Claims, audience: str | None) -> bool:
    """A tool bound to a resource runs only with a credential whose verified ``aud`` names that resource."""
    return audience is None or audience in claims.aud


def _mint_refusal(
    ctx: CallContext, tool: str, call_id: str, scopes: tuple[str, ...], minted: MintOutcome
) -> ToolResult:
    error = minted.error
    leftover = getattr(error, "unreleased", None)
    if leftover is not None:  # issued, then given up on, and the release failed: it lives until its exp
        jti, exp = leftover
        ctx.trace.emit(
            ReleaseFailed, at=minted.ended, tool=tool, call_id=call_id, scope=scopes, jti=jti, exp=exp,
            error=type(error).__name__,
        )  # fmt: skip
    if isinstance(error, ScopeMismatch):
        return _deny(ctx, tool, call_id, "scope_mismatch", messages.scope_mismatch(scopes), scopes=scopes)
    if isinstance(error, AudienceMismatch):
        return _deny(ctx, tool, call_id, "scope_mismatch", messages.audience_mismatch(error.audience), scopes=scopes)
    if isinstance(error, ScopeViolation):
        return _deny(ctx, tool, call_id, "broker_refused", messages.broker_refused(scopes), scopes=scopes)
    if isinstance(error, TaskBudgetExhausted):
        return _deny(ctx, tool, call_id, "budget_exhausted", messages.budget_exhausted(), scopes=scopes)
    ctx.trace.emit(MintFailed, at=minted.ended, tool=tool, call_id=call_id, scope=scopes, error=type(error).__name__)
    message = messages.mint_failed(tool)
    return ToolResult(tool, call_id, False, False, "mint_failed", message, message, scopes, exception=error)


def _run_result(
    ctx: CallContext, tool: ScopedTool, call_id: str, scopes: tuple[str, ...], cred: HeldCredential, run: RunOutcome
) -> ToolResult:
    jti, agent = cred.claims.jti, cred.agent_id
    if run.status == "ok":
        return ToolResult(tool.name, call_id, True, False, None, "", run.value, scopes, jti, agent)
    error: BaseException | None = run.error
    if run.status == "timeout":
        message = messages.timeout(tool.name, tool.timeout or 0.0)
        error = ToolTimeout(message, tool=tool.name, call_id=call_id, timeout=tool.timeout or 0.0)
        kind: ErrorKind = "timeout"
    elif run.status == "cancelled":
        message, kind = messages.cancelled(tool.name), "cancelled"
    else:
        message = ctx.policy.tool_error_message(tool.name, run.error or RuntimeError())
        kind = "tool_error"
    return ToolResult(tool.name, call_id, False, False, kind, message, message, scopes, jti, agent, error)


def _approval(ctx: CallContext, tool: ScopedTool, bound: Bound, scopes: tuple[str, ...], call_id: str) -> Any:
    """Ask for a person's yes to exactly this call, judge the answer, record it; returns the :class:`Verdict`."""
    rules = ctx.policy.approval or ApprovalRules(None)
    request = ApprovalRequest.build(
        tool=tool.name, kwargs=bound.kwargs, scope=scopes, task_id=ctx.task_id, orch_id=ctx.orch_id,
        call_id=call_id, now=ctx.trace.clock.wall(), timeout=rules.timeout,
    )  # fmt: skip
    ids: dict[str, Any] = {"tool": tool.name, "call_id": call_id, "scope": scopes, "approval_id": request.id}
    shown = messages.clip(request.canonical_arguments, 2000)
    ctx.trace.emit(ApprovalRequested, digest=request.digest, expires_at=request.expires_at, arguments=shown, **ids)
    if rules.approver is None:
        verdict = Verdict(False, "no_approver")
    else:
        answer: ApprovalAnswer = yield Ask(request, rules.approver, rules.timeout)
        verdict = judge(request, answer, rules, ctx.ledger)
    recorded: RecordOutcome = yield RecordApproval(request, verdict)
    if verdict.granted and recorded.where == "failed":  # a yes nobody can audit is not acted on
        verdict = Verdict(False, "not_recorded", verdict.approver, verdict.approval_id)
    if verdict.granted:
        ctx.trace.emit(
            ApprovalGranted, digest=request.digest, approver=verdict.approver, recorded=recorded.where, **ids
        )
    else:
        ctx.trace.emit(
            ApprovalRefused, digest=request.digest, reason=verdict.reason, approver=verdict.approver,
            recorded=recorded.where, **ids,
        )  # fmt: skip
    return verdict


def _needs_approval(ctx: CallContext, tool: ScopedTool, scopes: tuple[str, ...]) -> bool:
    return tool.approval or (ctx.policy.approval is not None and ctx.policy.approval.needed_for(scopes))


def call_flow(ctx: CallContext, tool: ScopedTool, arguments: Mapping[str, Any] | str | None, call_id: str) -> CallFlow:
    """One guarded tool call, as a generator of effects; returns the :class:`ToolResult`."""
    name = tool.name
    try:
        bound = tool.bind(arguments)
    except ArgumentProblems as exc:
        message = messages.invalid_arguments(name, exc.problems)
        ctx.trace.emit(Rejected, tool=name, call_id=call_id, message=message)
        error = InvalidToolArguments(message, tool=name, call_id=call_id, problems=exc.problems)
        return ToolResult(name, call_id, False, False, "invalid_arguments", message, message, exception=error)

    try:
        scopes = tool.render(bound)
    except UnsafeArgumentError as exc:
        return _deny(ctx, name, call_id, "unsafe_argument", messages.unsafe_argument(exc))

    missing = tuple(uncovered(ctx.ceiling, scopes))
    if missing:
        message = messages.outside_ceiling(missing, ctx.ceiling)
        return _deny(ctx, name, call_id, "outside_ceiling", message, scopes=scopes, missing=missing)

    left = math.floor(ctx.remaining())
    if left < 1:
        return _deny(ctx, name, call_id, "budget_exhausted", messages.budget_exhausted(), scopes=scopes)
    ttl = min(tool.ttl or ctx.default_ttl, left)

    if _needs_approval(ctx, tool, scopes):
        verdict: Verdict = yield from _approval(ctx, tool, bound, scopes, call_id)
        if not verdict.granted:
            timeout = ctx.policy.approval.timeout if ctx.policy.approval is not None else 0.0
            message = messages.approval_refused(name, verdict.reason, timeout)
            return _deny(ctx, name, call_id, "approval_denied", message, scopes=scopes)

    minted: MintOutcome = yield Mint(name, call_id, scopes, ttl, tool.audience)
    if minted.credential is None:
        return _mint_refusal(ctx, name, call_id, scopes, minted)
    cred: HeldCredential = minted.credential
    claims = cred.claims
    ids: dict[str, Any] = {"tool": name, "call_id": call_id, "scope": scopes, "jti": claims.jti}
    ctx.trace.emit(
        Minted,
        at=minted.ended,
        agent_id=cred.agent_id,
        ttl=ttl,
        exp=claims.exp,
        mint_time=minted.ended - minted.started,
        round_trips=getattr(cred, "round_trips", None),
        prefetched=tuple(getattr(cred, "prefetched", ())),
        **ids,
    )
    live = LiveCall(cred, name, call_id, scopes, minted.ended)

    exact = _matches(claims, scopes, ctx)
    if not (exact and _bound(claims, tool.audience)):
        released: ReleaseOutcome = yield Release(cred)
        record_release(ctx.trace, live, claims, released)
        message = messages.audience_mismatch(str(tool.audience)) if exact else messages.scope_mismatch(scopes)
        return _deny(
            ctx, name, call_id, "scope_mismatch", message, scopes=scopes, jti=claims.jti, agent_id=cred.agent_id
        )

    run: RunOutcome = yield Run(tool, tool.call_kwargs(bound, cred), cred, tool.timeout)
    ctx.trace.emit(
        Executed,
        at=run.ended,
        agent_id=cred.agent_id,
        outcome=run.status,
        started=run.started,
        ended=run.ended,
        run_time=run.ended - run.started,
        error=type(run.error).__name__ if run.status == "error" else None,
        **ids,
    )
    released = yield Release(cred)
    record_release(ctx.trace, live, claims, released)
    return _run_result(ctx, tool, call_id, scopes, cred, run)
