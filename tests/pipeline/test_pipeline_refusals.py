"""Widening is refused — by the pipeline first, with the scopes named, and by the broker when that check is gone —
and the depth limit is a clear error before the broker's; nothing is minted for a refused stage."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_support import CEILING, KNOWLEDGE, TRIAGE, ended, issued, support_tools
from support import Recorder, audit

from agentwrit_tools import Broker, Credential, ScopeViolation, scoped_tool
from agentwrit_tools.pipeline import (
    DelegationRefused,
    DelegationTooDeep,
    HandoffRefused,
    Pipeline,
    PipelineFinished,
    Stage,
    StageContext,
)
from agentwrit_tools.pipeline import _flow as pipeline_flow
from agentwrit_tools.trace import ListSink


def _noop(ctx: StageContext) -> Any:
    return ctx.input


def _registered_scopes(operator: Broker, task_id: str) -> list[str]:
    """The scope each agent registered with (``agent <name> registered with scope a,b``)."""
    return [e.detail.rsplit("scope ", 1)[1] for e in audit(operator, task_id, "agent_registered")]


def test_a_declared_widening_is_refused_before_anything_is_minted(
    client: Broker, operator: Broker, task_id: str
) -> None:
    sink = ListSink()
    pipeline = Pipeline([Stage("knowledge", KNOWLEDGE, _noop), Stage("response", TRIAGE, _noop)])
    with pytest.raises(DelegationRefused) as caught:
        pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[sink])
    refusal = caught.value
    assert str(refusal) == (
        "stage 'response' needs read:tickets:*, which stage 'knowledge' does not hold "
        "(stage 'knowledge' holds read:kb:*, write:replies:*); a handoff can only narrow"
    )
    assert (refusal.stage, refusal.source, refusal.missing, refusal.by_broker) == (
        "response",
        "knowledge",
        ("read:tickets:*",),
        False,
    )
    assert audit(operator, task_id) == []
    assert [e.type for e in sink] == ["pipeline_started", "handoff_refused", "pipeline_finished"]
    finished = sink[-1]
    assert isinstance(finished, PipelineFinished)
    assert (finished.status, finished.minted, finished.error) == ("error", 0, "DelegationRefused")


def test_a_first_stage_wider_than_the_task_ceiling_is_refused(client: Broker, operator: Broker, task_id: str) -> None:
    pipeline = Pipeline([Stage("triage", [*TRIAGE, "read:customers:*"], _noop)])
    with pytest.raises(DelegationRefused, match=r"needs read:customers:\*, which the task ceiling does not hold"):
        pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert audit(operator, task_id) == []


def test_a_widening_found_at_the_handoff_mints_nothing_for_that_stage(
    client: Broker, operator: Broker, task_id: str
) -> None:
    sink = ListSink()
    knowledge = ["read:kb:*", "write:replies:T-1"]
    pipeline = Pipeline(
        [
            Stage("triage", TRIAGE, lambda ctx: "T-1"),
            Stage("knowledge", knowledge, lambda ctx: {"ticket": "T-2"}),  # say a model picked another ticket
            Stage("response", "write:replies:{ticket}", _noop),
        ]
    )
    with pytest.raises(DelegationRefused) as caught:
        pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[sink])
    assert caught.value.missing == ("write:replies:T-2",)
    assert caught.value.held == tuple(knowledge)
    assert "stage 'response' needs write:replies:T-2" in str(caught.value)
    # Two stages got agents and tokens; the refused one got nothing, not even a registration.
    assert _registered_scopes(operator, task_id) == [",".join(TRIAGE), ",".join(knowledge)]
    assert audit(operator, task_id, "registration_policy_violation", "delegation_attenuation_violation") == []
    assert issued(operator, task_id) <= ended(operator, task_id)
    refused = [e for e in sink if isinstance(e, HandoffRefused)]
    assert [(e.stage, e.source, e.missing, e.by_broker) for e in refused] == [
        ("response", "knowledge", ("write:replies:T-2",), False)
    ]
    assert [e.type for e in sink if e.type.startswith("stage_")] == ["stage_started", "stage_finished"] * 2


def test_without_the_client_check_the_broker_refuses_the_widening(
    client: Broker, operator: Broker, task_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Remove the pipeline's own check: what stops the widening now is the broker alone.
    monkeypatch.setattr(pipeline_flow, "check_narrowing", lambda *args: None)
    pipeline = Pipeline([Stage("knowledge", KNOWLEDGE, _noop), Stage("response", TRIAGE, _noop)])
    with pytest.raises(DelegationRefused) as caught:
        pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    refusal = caught.value
    assert refusal.by_broker
    assert isinstance(refusal.__cause__, ScopeViolation)
    assert refusal.missing == ("read:tickets:*",)
    assert "the broker refused it" in str(refusal)
    # The response agent's registration under the knowledge stage's launcher was refused; nothing was issued.
    [violation] = audit(operator, task_id, "registration_policy_violation")
    assert violation.outcome == "denied"
    assert _registered_scopes(operator, task_id) == [",".join(KNOWLEDGE)]
    assert issued(operator, task_id) <= ended(operator, task_id)


def test_without_the_client_check_the_broker_holds_the_task_ceiling(
    client: Broker, operator: Broker, task_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_flow, "check_narrowing", lambda *args: None)
    pipeline = Pipeline([Stage("triage", [*TRIAGE, "read:customers:*"], _noop)])
    with pytest.raises(DelegationRefused) as caught:
        pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert caught.value.by_broker
    assert caught.value.source is None
    assert caught.value.missing == ("read:customers:*",)
    assert audit(operator, task_id, "agent_registered") == []


def test_a_stage_token_itself_cannot_delegate_wider(client: Broker, operator: Broker, task_id: str) -> None:
    """Delegation is checked against the delegator's token too, whoever registered the delegate."""
    recorder = Recorder()
    tools = support_tools(recorder)

    def knowledge(ctx: StageContext) -> str:
        call = ctx.call(tools["search_kb"], {"article": "kb-1"})  # gives us a registered agent to aim at
        assert call.agent_id is not None
        with pytest.raises(ScopeViolation):
            ctx.credential.delegate(call.agent_id, "read:tickets:T-1")  # type: ignore[union-attr]
        return "refused"

    result = Pipeline([Stage("knowledge", KNOWLEDGE, knowledge)]).run(
        client, orch_id="desk", task_id=task_id, ceiling=CEILING
    )
    assert result.output == "refused"
    [violation] = audit(operator, task_id, "delegation_attenuation_violation")
    assert "read:tickets:T-1" in violation.detail


def test_more_stages_than_the_depth_limit_is_an_error_before_the_broker_sees_anything() -> None:
    stages = [Stage(f"hop-{i}", "read:kb:*", _noop) for i in range(6)]
    with pytest.raises(DelegationTooDeep) as caught:
        Pipeline(stages)
    assert (caught.value.depth, caught.value.limit) == (6, 5)
    assert "6 stages is too deep" in str(caught.value)
    assert "the broker allows 5" in str(caught.value)


def test_the_broker_refuses_a_sixth_record_which_the_pipeline_never_asks_for(
    client: Broker, operator: Broker, task_id: str
) -> None:
    """At five stages the last call's credential carries five records; one more is the broker's refusal."""
    refused: list[BaseException] = []

    @scoped_tool("read:kb:{article}")
    def deepest(article: str, credential: Credential) -> int:
        try:
            credential.delegate(credential.agent_id, f"read:kb:{article}")
        except ScopeViolation as exc:
            refused.append(exc)
        return credential.claims.depth

    def last(ctx: StageContext) -> Any:
        return ctx.call(deepest, {"article": "kb-1"}).output

    stages = [*(Stage(f"hop-{i}", "read:kb:*", _noop) for i in range(4)), Stage("last", "read:kb:*", last)]
    result = Pipeline(stages).run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert result.output == 5
    assert len(refused) == 1
    [violation] = audit(operator, task_id, "delegation_attenuation_violation")
    assert violation.detail == "delegation depth limit reached"
