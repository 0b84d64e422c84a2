"""The approval step of the I/O-free flow, driven by hand: which effects it yields, in which order, and what each
answer means — no broker, no threads. Plus the pure pieces: the digest, the judge, the ledger, JSON approvals."""

from __future__ import annotations

import time
from typing import Any

import pytest
from guard_fakes import ORCH_ID, TASK_ID, FakeCredential, context

from agentwrit_tools import ConfigurationError, Credential, Policy, scoped_tool
from agentwrit_tools.guard import Approval, ApprovalLedger, ApprovalRequest, ApprovalRules
from agentwrit_tools.guard._approval import ApprovalAnswer, Ask, RecordApproval, RecordOutcome, audit_record, judge
from agentwrit_tools.guard._effects import Mint, MintOutcome
from agentwrit_tools.guard._flow import call_flow


@scoped_tool("write:prescriptions:{patient_id}", ttl=15, approval=True)
def write_prescription(patient_id: str, drug: str, dose_mg: int, credential: Credential) -> str:
    return "written"


def _approver(request: ApprovalRequest) -> bool:
    raise AssertionError("the flow never calls the approver itself: the driver does")


POLICY = Policy().with_approval(_approver, timeout=30, max_age=60)
ARGS = {"patient_id": "P-1042", "drug": "atorvastatin", "dose_mg": 20}


def _request(**changes: Any) -> ApprovalRequest:
    options: dict[str, Any] = {
        "tool": "write_prescription",
        "kwargs": ARGS,
        "scope": ["write:prescriptions:P-1042"],
        "task_id": TASK_ID,
        "orch_id": ORCH_ID,
        "call_id": "c-1",
        "now": time.time(),
        "timeout": 30,
    }
    return ApprovalRequest.build(**{**options, **changes})


def test_the_flow_asks_then_records_then_mints() -> None:
    ctx = context(("write:prescriptions:P-1042",), policy=POLICY)
    flow = call_flow(ctx, write_prescription, ARGS, "c-1")
    ask = next(flow)
    assert isinstance(ask, Ask)
    assert ask.timeout == 30
    assert ask.request.scope == ("write:prescriptions:P-1042",)
    assert ask.request.canonical_arguments == '{"dose_mg":20,"drug":"atorvastatin","patient_id":"P-1042"}'
    record = flow.send(ApprovalAnswer(ask.request.approve("dr-house"), None, False, time.time()))
    assert isinstance(record, RecordApproval)
    assert record.verdict.granted
    assert audit_record(record.request, record.verdict) == {
        "approval_id": ask.request.id,
        "task_id": TASK_ID,
        "orch_id": ORCH_ID,
        "tool": "write_prescription",
        "scope": ["write:prescriptions:P-1042"],
        "digest": ask.request.digest,
        "decision": "granted",
        "reason": "approved",
        "approver": "dr-house",
    }
    mint = flow.send(RecordOutcome("broker"))
    assert isinstance(mint, Mint)
    assert [e.type for e in ctx.trace.events] == ["approval_requested", "approval_granted"]
    run = flow.send(MintOutcome(FakeCredential(mint.scopes), None, 1.0, 1.01))
    assert run.kwargs["drug"] == "atorvastatin"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ApprovalAnswer(False, None, False, 0), "denied"),
        (ApprovalAnswer(None, None, True, 0), "timeout"),
        (ApprovalAnswer(None, RuntimeError("x"), False, 0), "approver_failed"),
        (ApprovalAnswer("yes", None, False, 0), "approver_failed"),
    ],
)
def test_a_refused_answer_ends_the_call_before_any_mint(answer: ApprovalAnswer, reason: str) -> None:
    ctx = context(("write:prescriptions:P-1042",), policy=POLICY)
    flow = call_flow(ctx, write_prescription, ARGS, "c-1")
    next(flow)
    record = flow.send(answer)
    assert isinstance(record, RecordApproval)
    assert record.verdict.reason == reason
    with pytest.raises(StopIteration) as stop:
        flow.send(RecordOutcome("trace"))
    result = stop.value.value
    assert result.error_kind == "approval_denied"
    assert [e.type for e in ctx.trace.events] == ["approval_requested", "approval_refused", "denied"]


def test_a_yes_that_cannot_be_recorded_is_refused() -> None:
    ctx = context(("write:prescriptions:P-1042",), policy=POLICY)
    flow = call_flow(ctx, write_prescription, ARGS, "c-1")
    ask = next(flow)
    flow.send(ApprovalAnswer(True, None, False, time.time()))
    with pytest.raises(StopIteration) as stop:
        flow.send(RecordOutcome("failed", "BrokerUnavailable"))
    assert stop.value.value.error_kind == "approval_denied"
    refused = ctx.trace.events[1]
    assert (refused.type, refused.reason, refused.recorded) == ("approval_refused", "not_recorded", "failed")
    assert ask.request.digest == refused.digest


def test_no_approver_means_no_question_and_a_refusal() -> None:
    ctx = context(("write:prescriptions:P-1042",))
    flow = call_flow(ctx, write_prescription, ARGS, "c-1")
    record = next(flow)
    assert isinstance(record, RecordApproval)
    assert record.verdict.reason == "no_approver"


def test_the_digest_binds_tool_arguments_scope_and_task() -> None:
    base = _request()
    assert base.digest == _request(call_id="c-2", now=0).digest  # not the call id, not the time
    for changed in (
        _request(tool="write_note"),
        _request(kwargs={**ARGS, "dose_mg": 200}),
        _request(scope=["write:prescriptions:P-2000"]),
        _request(task_id="another-task"),
        _request(orch_id="another-orch"),
    ):
        assert changed.digest != base.digest
    assert base.id != _request().id  # every request its own id


def test_the_judge() -> None:
    rules = ApprovalRules(_approver, max_age=60)
    request, now = _request(), time.time()
    ledger = ApprovalLedger()

    def verdict(value: Any) -> str:
        return judge(request, ApprovalAnswer(value, None, False, now), rules, ledger).reason

    assert verdict(_request(kwargs={**ARGS, "dose_mg": 80}).approve("dr-house")) == "arguments_changed"
    assert verdict(Approval(True, "0" * 64, request.id, "dr-house", now)) == "arguments_changed"
    assert verdict(Approval(True, request.digest, "old-one", "dr-house", now - 61)) == "expired"
    assert verdict(Approval(True, request.digest, "future", "dr-house", now + 60)) == "expired"
    assert verdict(Approval(False, request.digest, request.id, "dr-house", now)) == "denied"
    assert verdict(True) == "approved"  # a plain yes: an approval of exactly this request
    again = _request()  # the same call asked about again: a new request, a new id, the same digest
    assert verdict(again.approve("dr-house")) == "approved"
    same = _request().approve("dr-house")
    assert verdict(same) == "approved"
    assert verdict(same) == "replayed"


def test_the_ledger_is_bounded_and_forgets_only_what_is_stale() -> None:
    clock = [1000.0]
    ledger = ApprovalLedger(2, clock=lambda: clock[0])
    assert ledger.consume("a", 1010)
    assert ledger.consume("b", 1100)
    assert not ledger.consume("a", 1010)
    assert not ledger.consume("c", 1100)  # full of live entries: refused, nothing forgotten
    clock[0] = 1011
    assert ledger.consume("c", 1100)  # "a" is stale now


def test_approvals_travel_as_json_and_are_checked_on_the_way_in() -> None:
    approval = _request().approve("dr-house")
    assert Approval.from_dict(approval.to_dict()) == approval
    for bad in (True, "yes", {"approved": "yes"}, {**approval.to_dict(), "decided_at": True}):
        with pytest.raises(ConfigurationError):
            Approval.from_dict(bad)
    with pytest.raises(ConfigurationError, match="plain identifier"):
        Approval.from_dict({**approval.to_dict(), "approver": "Dr. House <script>"})
