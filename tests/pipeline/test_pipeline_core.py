"""The pipeline's declarations and its I/O-free core, without sockets: flows stepped with hand-made outcomes."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentwrit_tools import AgentWritError, AsyncBroker, Broker, BrokerUnavailable, ConfigurationError, Task
from agentwrit_tools.client import Claims, DelegationRecord, Problem
from agentwrit_tools.errors import ScopeViolation
from agentwrit_tools.guard import Policy
from agentwrit_tools.pipeline import (
    PIPELINE_EVENT_TYPES,
    DelegationRefused,
    DelegationTooDeep,
    Halt,
    Pipeline,
    PipelineError,
    Stage,
    StageStarted,
    stage,
)
from agentwrit_tools.pipeline._effects import (
    CloseLaunchers,
    Delegate,
    Obtained,
    OpenLauncher,
    Register,
    Release,
    ReleaseLater,
    ReleaseOutcome,
    RunStage,
    Settle,
    StageOutcome,
)
from agentwrit_tools.pipeline._flow import check_depth, check_narrowing, run_flow
from agentwrit_tools.pipeline._pipeline import REGISTRATION_TTL
from agentwrit_tools.pipeline._state import RunState
from agentwrit_tools.trace import Clock, ReleaseFailed, Trace, format_sse

# -- declarations ---------------------------------------------------------------------------------------------


def _body(ctx: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "stage name 'bad name'"),
        ({"scope": []}, "non-empty list"),
        ({"scope": "read:kb"}, "stage 'kb'"),
        ({"scope": ["read:kb:*", 3]}, "scope string"),
        ({"run": "not callable"}, "run must be a function"),
        ({"tools": [_body]}, "ScopedTool"),
        ({"ttl": 0}, "ttl must be"),
        ({"ttl": True}, "ttl must be"),
        ({"policy": "tell"}, "policy must be a Policy"),
    ],
)
def test_a_stage_is_checked_when_declared(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"name": "kb", "scope": "read:kb:*", "run": _body, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        Stage(**arguments)


def test_the_stage_decorator_names_the_stage_after_its_function() -> None:
    @stage(["read:kb:*"], ttl=30, policy=Policy.raise_all())
    async def knowledge(ctx: Any) -> None:
        return None

    assert isinstance(knowledge, Stage)
    assert (knowledge.name, knowledge.ttl, knowledge.is_async) == ("knowledge", 30, True)
    assert knowledge.static_scope == ("read:kb:*",)
    assert stage("read:kb:*", name="kb")(_body).name == "kb"


def test_a_scope_function_is_checked_when_the_stage_is_reached() -> None:
    response = Stage("response", lambda ticket: f"write:replies:{ticket}", _body)
    assert response.static_scope is None
    assert response.scopes_for("T-1") == ("write:replies:T-1",)
    with pytest.raises(ConfigurationError, match="its scope function"):
        response.scopes_for("a:b")  # four parts: not a scope


def test_a_pipeline_is_checked_when_declared() -> None:
    one = Stage("one", "read:kb:*", _body)
    with pytest.raises(ConfigurationError, match="at least one stage"):
        Pipeline([])
    with pytest.raises(ConfigurationError, match="two stages are named 'one'"):
        Pipeline([one, one])
    with pytest.raises(ConfigurationError, match="Stage objects"):
        Pipeline([_body])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="max_depth"):
        Pipeline([one], max_depth=0)
    with pytest.raises(DelegationTooDeep, match="2 stages is too deep"):
        Pipeline([one, Stage("two", "read:kb:*", _body)], max_depth=1)
    assert repr(Pipeline([one])) == "Pipeline(['one'])"


def test_run_arguments_are_checked_before_anything_is_sent() -> None:
    pipeline = Pipeline([Stage("one", "read:kb:*", _body)])
    broker = Broker("http://127.0.0.1:9")  # nothing listens there: any request would fail loudly
    good: dict[str, Any] = {"orch_id": "o", "task_id": "t", "ceiling": "read:kb:*"}
    for bad, message in [
        ({"task_id": "a/b"}, "task_id"),
        ({"orch_id": ""}, "orch_id"),
        ({"ceiling": "read:kb"}, "task ceiling"),
        ({"budget": 0}, "budget"),
        ({"call_ttl": -1}, "call_ttl"),
        ({"policy": "tell"}, "policy"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            pipeline.run(broker, **{**good, **bad})


def test_the_checks_name_the_scopes() -> None:
    refusal = check_narrowing("response", "knowledge", ("write:replies:*", "read:kb:a"), ("read:kb:*",))
    assert isinstance(refusal, DelegationRefused)
    assert isinstance(refusal, PipelineError)
    assert isinstance(refusal, AgentWritError)
    assert refusal.missing == ("write:replies:*",)
    assert str(refusal) == (
        "stage 'response' needs write:replies:*, which stage 'knowledge' does not hold "
        "(stage 'knowledge' holds read:kb:*); a handoff can only narrow"
    )
    assert check_narrowing("response", None, ("read:kb:a",), ("read:kb:*",)) is None
    assert check_depth("last", 4, 5, "a tool call in stage 'last'") is None
    too_deep = check_depth("last", 5, 5, "a tool call in stage 'last'")
    assert isinstance(too_deep, DelegationTooDeep)
    assert (too_deep.stage, too_deep.depth, too_deep.limit) == ("last", 6, 5)
    assert str(too_deep) == (
        "a tool call in stage 'last' would need a delegation chain of 6 records; the broker allows 5 "
        "(it refuses to delegate from a token whose chain already has 5)"
    )


def test_halt_is_a_signal_not_an_error() -> None:
    assert not issubclass(Halt, AgentWritError)
    assert Halt("spam").reason == "spam"
    assert Halt().reason == ""


def test_pipeline_events_serialise_for_a_live_page() -> None:
    trace = Trace(task_id="t", orch_id="o", clock=Clock(lambda: 5.0, lambda: 1000.0))
    event = trace.emit(
        StageStarted, stage="knowledge", index=1, depth=1, chain=("spiffe://a",), exp=2000, scope=("read:kb:*",)
    )
    assert event.to_dict()["chain"] == ["spiffe://a"]
    assert format_sse(event).startswith("id: 1\nevent: stage_started\ndata: {")
    assert set(PIPELINE_EVENT_TYPES) == {
        "pipeline_started",
        "stage_started",
        "stage_finished",
        "halted",
        "handoff_refused",
        "pipeline_finished",
    }


# -- the guard's seams the pipeline plugs into --------------------------------------------------------------


class _AsyncMinter:
    async def mint(self, scope: Any, *, ttl: int | None = None) -> Any:
        raise AssertionError("never called")


class _SyncMinter:
    def mint(self, scope: Any, *, ttl: int | None = None) -> Any:
        raise AssertionError("never called")


def test_a_task_refuses_a_minter_of_the_wrong_kind_and_a_foreign_trace() -> None:
    broker, abroker = Broker("http://127.0.0.1:9"), AsyncBroker("http://127.0.0.1:9")
    base: dict[str, Any] = {"orch_id": "o", "task_id": "t", "ceiling": "read:kb:*"}
    with pytest.raises(ConfigurationError, match="needs a sync minter"):
        Task(broker, minter=_AsyncMinter(), **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs an async minter"):
        Task(abroker, minter=_SyncMinter(), **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="mint"):
        Task(broker, minter=object(), **base)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="task's own task_id"):
        Task(broker, trace=Trace(task_id="other", orch_id="o"), **base)
    shared = Trace(task_id="t", orch_id="o")
    with pytest.raises(ConfigurationError, match="pass sinks and clock to the shared trace"):
        Task(broker, trace=shared, sinks=[print], **base)
    task = Task(broker, trace=shared, minter=_SyncMinter(), **base)
    assert task.trace is shared


# -- the run flow, stepped by hand --------------------------------------------------------------------------

_ids = itertools.count(1)


@dataclass
class FakeCredential:
    claims: Claims
    released: bool = False
    release_error: BaseException | None = field(default=None, repr=False)

    @property
    def agent_id(self) -> str:
        return self.claims.sub


def _credential(scopes: tuple[str, ...], chain: tuple[DelegationRecord, ...] = ()) -> FakeCredential:
    n = next(_ids)
    claims = Claims(
        sub=f"spiffe://td/agent/o/t/{n:016x}",
        exp=10_000,
        jti=secrets.token_hex(16),
        scope=scopes,
        delegation_chain=chain,
    )
    return FakeCredential(claims)


def _violation() -> ScopeViolation:
    problem = Problem(type="urn:agentwrit:error:scope_violation", title="Forbidden", status=403, detail="no")
    return ScopeViolation(problem)


class Stepper:
    """Answers a flow's effects the way an edge would, with scripted failures."""

    def __init__(self, run: RunState, *, refuse_register: int | None = None, fail_release: str = "") -> None:
        self.run = run
        self.refuse_register = refuse_register
        self.fail_release = fail_release
        self.registers = 0
        self.effects: list[Any] = []

    def answer(self, effect: Any) -> Any:
        self.effects.append(effect)
        if isinstance(effect, OpenLauncher):
            return f"launcher:{','.join(effect.scopes)}"
        if isinstance(effect, Register):
            self.registers += 1
            if self.registers == self.refuse_register:
                return Obtained(None, _violation(), 0.0, 0.0)
            credential = _credential(effect.scopes)
            self.run.ledger.add(credential, effect.kind, effect.stage, 0.0)
            return Obtained(credential, None, 0.0, 0.0)
        if isinstance(effect, Delegate):
            parent = effect.credential.claims
            record = DelegationRecord(agent=parent.sub, scope=parent.scope)
            credential = _credential(effect.scopes, (*parent.delegation_chain, record))
            self.run.ledger.add(credential, effect.kind, effect.stage, 0.0)
            return Obtained(credential, None, 0.0, 0.0)
        if isinstance(effect, Release):
            if effect.credential.claims.scope == (self.fail_release,):
                return ReleaseOutcome(False, BrokerUnavailable("down"), 1.0)
            effect.credential.released = True
            return ReleaseOutcome(True, None, 1.0)
        if isinstance(effect, ReleaseLater):
            effect.credential.released = True
            return None
        if isinstance(effect, (Settle, CloseLaunchers)):
            return None
        assert isinstance(effect, RunStage)
        return StageOutcome("ok", effect.stage.name, None, 0.0, 0.5)

    def drive(self, flow: Any) -> Any:
        outcome: Any = None
        while True:
            try:
                effect = flow.send(outcome)
            except StopIteration as stop:
                return stop.value
            outcome = self.answer(effect)


def _state(*stages: Stage) -> RunState:
    return RunState(
        stages=stages,
        orch_id="o",
        task_id="t",
        ceiling=("read:kb:*", "write:replies:*"),
        budget=60,
        call_ttl=30,
        policy=Policy.tell_model(),
        max_depth=5,
        registration_ttl=REGISTRATION_TTL,
        trace=Trace(task_id="t", orch_id="o"),
    )


def test_the_flow_hands_off_through_a_released_registration_and_releases_leaves_first() -> None:
    run = _state(Stage("a", ["read:kb:*", "write:replies:*"], _body), Stage("b", "read:kb:*", _body))
    stepper = Stepper(run)
    result = stepper.drive(run_flow(run, None))
    assert result.output == "b"
    kinds = [type(e).__name__ for e in stepper.effects]
    assert kinds == [
        "OpenLauncher",  # the task ceiling
        "Register",  # stage a, under the ceiling
        "OpenLauncher",  # a's launcher, bounded by a's scope
        "RunStage",
        "Register",  # b's agent, under a's launcher...
        "Release",  # ...whose own token is released before anything else
        "Delegate",  # a delegates b's scope to it
        "OpenLauncher",
        "RunStage",
        "Settle",  # clean-up: releases made off a call's path are waited for first...
        "Release",  # ...then newest first: b's token...
        "Release",  # ...then a's
        "CloseLaunchers",  # and the launch tokens of the three launchers end with the run
    ]
    assert len(stepper.effects[-1].launchers) == 3
    registration_of_b = stepper.effects[4]
    assert registration_of_b.launcher == "launcher:read:kb:*,write:replies:*"
    assert registration_of_b.ttl == REGISTRATION_TTL
    assert [record.kind for record in result.minted] == ["stage", "registration", "stage"]
    assert all(record.released for record in result.minted)


def test_a_broker_refusal_comes_through_after_the_clean_up() -> None:
    """The client check passed (b is within a), yet the broker refused: its own error is raised, after a's release."""
    run = _state(Stage("a", "read:kb:*", _body), Stage("b", "read:kb:*", _body))
    stepper = Stepper(run, refuse_register=2)  # the broker refuses b's agent under a's launcher
    with pytest.raises(ScopeViolation):
        stepper.drive(run_flow(run, None))
    assert [type(e).__name__ for e in stepper.effects[-2:]] == ["Release", "CloseLaunchers"]
    assert run.ledger.live_newest_first() == []
    assert [record.kind for record in run.ledger.records()] == ["stage"]
    finished = run.trace.events[-1]
    assert (finished.type, finished.status, finished.error) == ("pipeline_finished", "error", "ScopeViolation")  # type: ignore[attr-defined]


def test_a_handoff_past_the_depth_limit_is_refused_before_any_effect() -> None:
    run = _state(Stage("a", "read:kb:*", _body), Stage("b", "read:kb:*", _body))
    run.max_depth = 0  # as if stage a's token already carried the broker's limit of records
    stepper = Stepper(run)
    with pytest.raises(
        DelegationTooDeep, match="the handoff from stage 'a' to 'b' would need a delegation chain of 1 record;"
    ):
        stepper.drive(run_flow(run, None))
    assert [type(e).__name__ for e in stepper.effects] == [
        "OpenLauncher",
        "Register",
        "OpenLauncher",
        "RunStage",
        "Settle",
        "Release",
        "CloseLaunchers",
    ]


def test_a_failed_release_is_recorded_and_counted_not_raised() -> None:
    run = _state(Stage("a", "read:kb:*", _body))
    stepper = Stepper(run, fail_release="read:kb:*")
    result = stepper.drive(run_flow(run, None))
    assert result.completed
    assert [record.released for record in result.minted] == [False]
    failed = [e for e in result.events if isinstance(e, ReleaseFailed)]
    assert [(e.error, e.exp) for e in failed] == [("BrokerUnavailable", 10_000)]
    assert result.events[-1].release_failed == 1  # type: ignore[attr-defined]


def test_a_tool_calls_credential_costs_a_registration_and_a_delegation_on_its_path() -> None:
    """The registration token's release is handed off (``ReleaseLater``) after the delegation, not awaited."""
    from agentwrit_tools.pipeline._flow import call_credential_flow, take_over

    run = _state(Stage("a", ["read:kb:*", "write:replies:*"], _body))
    stepper = Stepper(run)
    hold = stepper.drive(take_over(run, run.stages[0], 0, ("read:kb:*", "write:replies:*"), None))
    stepper.effects.clear()
    credential = stepper.drive(call_credential_flow(run, hold, ("read:kb:x",), None))
    assert [type(e).__name__ for e in stepper.effects] == ["Register", "Delegate", "ReleaseLater"]
    registration = stepper.effects[0]
    assert registration.kind == "registration"
    assert stepper.effects[2].credential.claims.sub == registration_sub(stepper)  # its own token, released later
    assert credential.claims.scope == ("read:kb:x",)
    assert credential.claims.delegation_chain[-1].agent == hold.agent_id


def registration_sub(stepper: Stepper) -> str:
    """The agent the Register effect created: the one the Delegate went to (``to`` is its registration credential,
    so a key-bound delegated token comes with the key it is bound to)."""
    delegate = next(e for e in stepper.effects if isinstance(e, Delegate))
    return str(delegate.to.claims.sub)
