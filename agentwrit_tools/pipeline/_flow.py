"""The pipeline, written once and free of I/O: handoffs, per-call credentials, and the clean-up.

Three flows yield effects (``_effects``) to a sync or an async edge:

* :func:`run_flow` — a whole run: check every declared scope narrows, then per stage obtain its token, run its
  body, and either go on, halt or stop on an error; and whatever happened, release everything the run minted
  (:func:`sweep_flow`) before returning or re-raising.
* :func:`call_credential_flow` — one tool call's credential, for the guard (the stage's minter runs it): a fresh
  agent is registered for exactly the call's scope under the stage's launcher, and the stage's token delegates
  exactly that scope to it; the registration token is released right after, off the call's path. The credential
  the tool gets is a delegated one, so its verified ``delegation_chain`` names every stage above it. On the
  call's path: the registration and the delegation (the nonce and the stage's launch token are fetched ahead),
  then the guard's release — three round trips.
* :func:`sweep_flow` — wait for the releases made off the path, release every live credential of the run,
  newest first, and end the launch tokens of every launcher the run opened.

The order of checks at a handoff is deliberate. The pipeline's own check (:func:`check_narrowing`) comes first,
for a message that names the scopes, and nothing reaches the broker when it fails. The broker then refuses the
same widening twice on its own: the next stage's agent is registered under a launcher whose ``allowed_scope``
is the previous stage's scope, and the delegation itself must be within the delegator's token. The depth limit
is checked before each delegation too, so the broker's refusal is never the first anyone hears of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ScopeViolation, TaskBudgetExhausted
from ..scopes import uncovered
from ..trace import Delegated, Released, ReleaseFailed
from ._effects import (
    CloseLaunchers,
    Delegate,
    Flow,
    Obtained,
    OpenLauncher,
    Register,
    Release,
    ReleaseLater,
    ReleaseOutcome,
    RunStage,
    Settle,
)
from ._errors import DelegationRefused, DelegationTooDeep
from ._events import (
    Halted,
    HandoffRefused,
    PipelineFinished,
    PipelineStarted,
    PipelineStatus,
    StageFinished,
    StageStarted,
)
from ._ledger import Held
from ._result import PipelineResult, StageRecord
from ._stage import Halt, Stage
from ._state import RunState, StageHold

__all__ = [
    "call_credential_flow",
    "check_depth",
    "check_narrowing",
    "record_refusal",
    "run_flow",
    "sweep_flow",
    "take_over",
]


def check_narrowing(
    stage: str, source: str | None, requested: tuple[str, ...], held: tuple[str, ...]
) -> DelegationRefused | None:
    """The client-side check of a handoff: the refusal to raise, or None when ``held`` covers ``requested``."""
    missing = tuple(uncovered(held, requested))
    if not missing:
        return None
    return DelegationRefused(stage=stage, source=source, requested=requested, held=held, missing=missing)


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def check_depth(stage: str, delegator_depth: int, limit: int, what: str) -> DelegationTooDeep | None:
    """Refuse a delegation from a token whose chain already has ``limit`` records, before the broker does.

    ``stage`` is the delegating stage; ``what`` names the delegation for the message.
    """
    if delegator_depth < limit:
        return None
    return DelegationTooDeep(
        f"{what} would need a delegation chain of {_records(delegator_depth + 1)}; "
        f"the broker allows {limit} (it refuses to delegate from a token whose chain already has {limit})",
        stage=stage,
        depth=delegator_depth + 1,
        limit=limit,
    )


def _preflight(run: RunState) -> None:
    """Every declared (static) scope narrows: refuse a widening pipeline before anything is minted."""
    held: tuple[str, ...] | None = run.ceiling
    source: str | None = None
    for stage in run.stages:
        declared = stage.static_scope
        if declared is not None and held is not None:
            refusal = check_narrowing(stage.name, source, declared, held)
            if refusal is not None:
                raise refusal
        held, source = declared, stage.name


def _obtained(outcome: Obtained) -> Any:
    if outcome.credential is None:
        raise outcome.error or RuntimeError("the edge returned neither a credential nor an error")
    return outcome.credential


def _broker_refusal(
    error: BaseException | None, stage: str, source: str | None, requested: tuple[str, ...], held: tuple[str, ...]
) -> BaseException | None:
    """A broker ScopeViolation over a widening, as the pipeline's typed refusal (chained to it)."""
    missing = tuple(uncovered(held, requested))
    if isinstance(error, ScopeViolation) and missing:
        refusal = DelegationRefused(
            stage=stage, source=source, requested=requested, held=held, missing=missing, by_broker=True
        )
        refusal.__cause__ = error
        return refusal
    return error


def _register_agent(run: RunState, launcher: Any, scopes: tuple[str, ...], stage: str) -> Flow[Obtained]:
    """Register a fresh agent for exactly ``scopes``; its registration token is released at once.

    Delegation needs a registered agent to delegate to, and registering hands out a token. That token is never
    given to anything: it is released before the delegation is asked for (and lives ``registration_ttl``
    seconds at most should the release fail). A failed release stays in the ledger for the clean-up.
    """
    outcome: Obtained = yield Register(launcher, scopes, run.registration_ttl, "registration", stage)
    if outcome.credential is not None:
        yield Release(outcome.credential)
    return outcome


def _emit_delegated(run: RunState, delegator: StageHold | None, credential: Any, at: float) -> None:
    claims = credential.claims
    run.trace.emit(
        Delegated,
        at=at,
        scope=tuple(claims.scope),
        jti=claims.jti,
        agent_id=claims.sub,
        delegator=delegator.agent_id if delegator is not None else "",
        exp=claims.exp,
    )


def _ttl(run: RunState) -> int:
    left = run.remaining()
    if left < 1:
        raise TaskBudgetExhausted(f"task {run.task_id!r} has no time left in the pipeline's budget")
    return left


def _first_stage(run: RunState, stage: Stage, scopes: tuple[str, ...]) -> Flow[Any]:
    refusal = check_narrowing(stage.name, None, scopes, run.ceiling)
    if refusal is not None:
        raise refusal
    outcome: Obtained = yield Register(run.launcher, scopes, _ttl(run), "stage", stage.name)
    error = _broker_refusal(outcome.error, stage.name, None, scopes, run.ceiling)
    if error is not None:
        raise error
    return _obtained(outcome)


def _handoff(run: RunState, stage: Stage, scopes: tuple[str, ...], previous: StageHold) -> Flow[Any]:
    source = previous.stage.name
    refusal = check_narrowing(stage.name, source, scopes, previous.scopes)
    if refusal is not None:
        raise refusal
    what = f"the handoff from stage {source!r} to {stage.name!r}"
    too_deep = check_depth(source, previous.depth, run.max_depth, what)
    if too_deep is not None:
        raise too_deep
    ttl = _ttl(run)
    registered = yield from _register_agent(run, previous.launcher, scopes, stage.name)
    error = _broker_refusal(registered.error, stage.name, source, scopes, previous.scopes)
    if error is not None:
        raise error
    agent = _obtained(registered)  # its credential: the delegated token comes with the agent's key
    delegated: Obtained = yield Delegate(previous.credential, agent, scopes, ttl, "stage", stage.name)
    error = _broker_refusal(delegated.error, stage.name, source, scopes, previous.scopes)
    if error is not None:
        raise error
    credential = _obtained(delegated)
    _emit_delegated(run, previous, credential, delegated.ended)
    return credential


def call_credential_flow(
    run: RunState, hold: StageHold, scopes: tuple[str, ...], ttl: int | None, audience: str | None = None
) -> Flow[Any]:
    """One tool call's credential: exactly ``scopes``, delegated from the stage's token to a fresh agent (and
    bound to the resource ``audience`` when the tool is).

    Errors are raised as they came (the guard turns a ScopeViolation into a ``broker_refused`` denial and
    anything else into ``mint_failed``); what was minted is in the ledger either way.
    """
    too_deep = check_depth(hold.stage.name, hold.depth, run.max_depth, f"a tool call in stage {hold.stage.name!r}")
    if too_deep is not None:
        raise too_deep
    stage = hold.stage.name
    registered: Obtained = yield Register(hold.launcher, scopes, run.registration_ttl, "registration", stage)
    agent = _obtained(registered)  # its credential: the delegated token comes with the agent's key
    delegated: Obtained = yield Delegate(hold.credential, agent, scopes, ttl or run.call_ttl, "call", stage, audience)
    # The registration token was never handed to anything; its release need not keep the call waiting (the run's
    # clean-up waits for it, and retries it if it failed).
    yield ReleaseLater(registered.credential)
    credential = _obtained(delegated)
    trips = (getattr(registered.credential, "round_trips", None), getattr(credential, "round_trips", None))
    if None not in trips:
        credential.round_trips = sum(trips)  # the call's path: the registration's requests and the delegation's
        credential.prefetched = registered.credential.prefetched
    _emit_delegated(run, hold, credential, delegated.ended)
    return credential


def _record_release(run: RunState, held: Held, outcome: ReleaseOutcome) -> None:
    if held.kind == "registration":  # plumbing of a delegation: counted in the run's records, not traced
        return
    claims = held.credential.claims
    ids: dict[str, Any] = {"scope": tuple(claims.scope), "jti": claims.jti, "agent_id": claims.sub}
    if outcome.error is None:
        run.trace.emit(
            Released, at=outcome.at, window=outcome.at - held.obtained_at, already_dead=not outcome.killed, **ids
        )
    else:
        run.trace.emit(ReleaseFailed, at=outcome.at, exp=claims.exp, error=type(outcome.error).__name__, **ids)


def sweep_flow(run: RunState) -> Flow[int]:
    """Wait for the releases made off the calls' path, release every credential of the run still alive (newest
    first), then end the launch tokens of every launcher the run opened; returns how many releases failed."""
    yield Settle()
    failed = 0
    for held in run.ledger.live_newest_first():
        outcome: ReleaseOutcome = yield Release(held.credential)
        failed += outcome.error is not None
        _record_release(run, held, outcome)
    launchers, run.launchers = tuple(run.launchers), []  # ended once, however often the clean-up runs
    if launchers:
        yield CloseLaunchers(launchers)
    return failed


@dataclass
class _Ending:
    status: PipelineStatus = "completed"
    output: Any = None
    error: BaseException | None = None
    halted_by: str | None = None
    reason: str | None = None
    records: list[StageRecord] = field(default_factory=list)


def record_refusal(run: RunState, refusal: DelegationRefused) -> None:
    """A ``handoff_refused`` event for a widening handoff (refused by the pipeline or by the broker)."""
    run.trace.emit(
        HandoffRefused, scope=refusal.requested, stage=refusal.stage, source=refusal.source, held=refusal.held,
        missing=refusal.missing, by_broker=refusal.by_broker,
    )  # fmt: skip


def take_over(
    run: RunState, stage: Stage, index: int, scopes: tuple[str, ...], previous: StageHold | None
) -> Flow[StageHold]:
    """Give ``stage`` its token — registered under the ceiling when it is the first, else delegated from
    ``previous`` (narrowing only) — and its launcher; records ``stage_started``."""
    if run.launcher is None:
        run.launcher = yield OpenLauncher(run.ceiling, run.budget, run.budget)
        run.launchers.append(run.launcher)
    if previous is None:
        credential = yield from _first_stage(run, stage, scopes)
    else:
        credential = yield from _handoff(run, stage, scopes, previous)
    launcher = yield OpenLauncher(scopes, _ttl(run), run.registration_ttl)
    run.launchers.append(launcher)
    hold = StageHold(stage, index, scopes, credential, launcher)
    claims = hold.claims
    chain = tuple(record.agent for record in claims.delegation_chain)
    ids: dict[str, Any] = {"scope": scopes, "jti": claims.jti, "agent_id": claims.sub}
    run.trace.emit(StageStarted, stage=stage.name, index=index, depth=claims.depth, chain=chain, exp=claims.exp, **ids)
    return hold


def _stages(run: RunState, value: Any, ending: _Ending) -> Flow[None]:
    previous: StageHold | None = None
    for index, stage in enumerate(run.stages):
        scopes = stage.scopes_for(value)
        hold = yield from take_over(run, stage, index, scopes, previous)
        claims = hold.claims
        ids: dict[str, Any] = {"scope": scopes, "jti": claims.jti, "agent_id": claims.sub}
        outcome = yield RunStage(stage, hold, value)
        error = type(outcome.error).__name__ if outcome.status in ("error", "cancelled") else None
        run_time = outcome.ended - outcome.started
        run.trace.emit(
            StageFinished, at=outcome.ended, stage=stage.name, index=index, outcome=outcome.status,
            run_time=run_time, error=error, **ids,
        )  # fmt: skip
        ending.records.append(StageRecord(stage.name, index, claims, outcome.status, run_time))
        if outcome.status == "halted":
            reason = outcome.error.reason if isinstance(outcome.error, Halt) else ""
            run.trace.emit(Halted, stage=stage.name, reason=reason)
            ending.status, ending.halted_by, ending.reason = "halted", stage.name, reason
            return
        if outcome.status != "ok":
            ending.status, ending.error = outcome.status, outcome.error
            return
        value = outcome.value
        previous = hold
    ending.output = value


def run_flow(run: RunState, value: Any) -> Flow[PipelineResult]:
    """A whole run; returns its result, or re-raises what stopped it once everything is released."""
    run.trace.emit(PipelineStarted, scope=run.ceiling, stages=tuple(s.name for s in run.stages), budget=run.budget)
    ending = _Ending()
    try:
        _preflight(run)
        yield from _stages(run, value, ending)
    except Exception as exc:  # refusals, depth, budget, broker errors, a scope function that failed
        ending.status, ending.error = "error", exc
        if isinstance(exc, DelegationRefused):
            record_refusal(run, exc)
    failed = yield from sweep_flow(run)
    error = type(ending.error).__name__ if ending.error is not None else None
    minted = len(run.ledger)
    run.trace.emit(PipelineFinished, status=ending.status, minted=minted, release_failed=failed, error=error)
    if ending.error is not None:
        raise ending.error
    return PipelineResult(
        status="halted" if ending.status == "halted" else "completed",
        output=ending.output,
        halted_by=ending.halted_by,
        reason=ending.reason,
        stages=tuple(ending.records),
        minted=run.ledger.records(),
        events=tuple(run.trace.events.events),
    )
