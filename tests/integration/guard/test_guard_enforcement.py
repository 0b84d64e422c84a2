"""The ceiling is enforced by the broker too, and hostile arguments never reach it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import MINTING, Recorder, audit

from agentwrit_tools import Broker, Credential, ScopeViolation, Task, scoped_tool
from agentwrit_tools.trace import Minted

INJECTION_CORPUS = [
    pytest.param("*", id="wildcard"),
    pytest.param("c-1:*", id="extra-part"),
    pytest.param("a b", id="space"),
    pytest.param("x\n", id="newline"),
    pytest.param("../x", id="path"),
    pytest.param("p\uff1a1", id="fullwidth-colon"),
    pytest.param("\u2217", id="asterisk-operator"),
    pytest.param("\uff0a", id="fullwidth-asterisk"),
    pytest.param("", id="empty"),
    pytest.param("a" * 10_000, id="10000-chars"),
]


def _tool(recorder: Recorder) -> Any:
    @scoped_tool("read:records:{patient_id}")
    def read_record(patient_id: str, credential: Credential) -> str:
        recorder.saw("read_record", credential)
        return patient_id

    return read_record


def test_the_broker_refuses_a_mint_outside_the_ceiling_through_the_task_launcher(
    client: Broker, operator: Broker, task_id: str
) -> None:
    task = Task(client, orch_id="o", task_id=task_id, ceiling="read:records:p-1")
    with task, pytest.raises(ScopeViolation) as refused:
        task.launcher.mint("read:records:p-2")
    assert refused.value.status_code == 403
    assert refused.value.error_code == "scope_violation"
    assert audit(operator, task_id, *MINTING) == []
    assert len(audit(operator, task_id, "registration_policy_violation")) == 1


def test_with_the_client_side_check_bypassed_the_broker_still_refuses_and_the_body_never_runs(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    tool = _tool(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:p-1") as task:
        task._checked_ceiling = ("read:records:*",)  # simulate a bug in the guard's own check
        result = task.call(tool, {"patient_id": "p-2"})
        assert task.call(tool, {"patient_id": "p-1"}).ok
    assert result.denied
    assert result.error_kind == "broker_refused"
    assert result.message == "access denied: the broker refused a credential for read:records:p-2"
    assert recorder.runs == 1
    assert recorder.seen[0].scope == ("read:records:p-1",)
    issued = audit(operator, task_id, "token_issued")
    assert len(issued) == 1
    assert "read:records:p-2" not in issued[0].detail


@pytest.mark.parametrize("value", INJECTION_CORPUS)
def test_injection_corpus_is_refused_with_nothing_minted(
    client: Broker, operator: Broker, task_id: str, value: str
) -> None:
    recorder = Recorder()
    tool = _tool(recorder)
    # Even a wildcard ceiling must not let a model-chosen value widen or reshape the scope.
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task:
        result = task.call(tool, {"patient_id": value})
    assert result.denied
    assert result.error_kind == "unsafe_argument"
    assert result.message.startswith("access denied: argument 'patient_id' cannot be used in a scope")
    assert value not in result.message or value == ""
    assert len(result.message) < 300
    assert recorder.runs == 0
    assert not [e for e in task.events if isinstance(e, Minted)]
    assert audit(operator, task_id) == []  # the broker never heard of this task


def test_list_arguments_are_checked_element_by_element(client: Broker, operator: Broker, task_id: str) -> None:
    @scoped_tool("read:records:{ids}")
    def read_many(ids: list[str]) -> int:
        return len(ids)

    with Task(client, orch_id="o", task_id=task_id, ceiling=["read:records:p-1", "read:records:p-2"]) as task:
        assert task.call(read_many, {"ids": ["p-1", "p-2"]}).ok
        hostile = task.call(read_many, {"ids": ["p-1", "*"]})
        outside = task.call(read_many, {"ids": ["p-1", "p-3"]})
    assert hostile.error_kind == "unsafe_argument"
    assert outside.error_kind == "outside_ceiling"
    assert outside.message == "access denied: needs read:records:p-3, task holds read:records:p-1, read:records:p-2"
    assert len(audit(operator, task_id, "token_issued")) == 1


def test_budget_spent_means_nothing_more_is_minted(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tool = _tool(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*", budget=2) as task:
        assert task.call(tool, {"patient_id": "p-1"}).ok
        time.sleep(max(0.0, task.remaining() - 0.9))  # less than a whole second left: too short for any TTL
        late = task.call(tool, {"patient_id": "p-2"})
    assert late.denied
    assert late.error_kind == "budget_exhausted"
    assert recorder.runs == 1
    assert recorder.seen[0].claims.exp - recorder.seen[0].claims.iat <= 2  # the first TTL was cut to the budget
    assert len(audit(operator, task_id, "token_issued")) == 1
