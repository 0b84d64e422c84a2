"""The per-call invariants of DESIGN.md, each proven against the real embedded broker (sync path)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import MINTING, Recorder, assert_dead, audit, is_dead

from agentwrit_tools import Broker, Credential, Task, current_credential, scoped_tool
from agentwrit_tools.trace import Executed, Minted, Released


def _reader(recorder: Recorder, **options: Any) -> Any:
    @scoped_tool("read:records:{patient_id}", **options)
    def read_record(patient_id: str, credential: Credential) -> dict[str, Any]:
        """Read one patient's record.

        Args:
            patient_id: the patient's id.
        """
        seen = recorder.saw("read_record", credential)
        assert current_credential() is credential
        return {"patient": patient_id, "jti": seen.jti}

    return read_record


def test_verified_claims_scope_is_exactly_the_rendered_scope(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tool = _reader(recorder)
    with Task(client, orch_id="orch-1", task_id=task_id, ceiling=["read:records:p-1"]) as task:
        result = task.call(tool, {"patient_id": "p-1"})
    assert result.ok
    assert not result.denied
    assert result.scope == ("read:records:p-1",)
    [seen] = recorder.seen
    assert seen.scope == ("read:records:p-1",)
    assert seen.claims.task_id == task_id
    assert seen.claims.orch_id == "orch-1"
    # What the broker itself issued (audit), not only what the client verified.
    [issued] = audit(operator, task_id, "token_issued")
    assert issued.resource == seen.jti
    assert "scope read:records:p-1," in issued.detail
    assert (result.jti, result.agent_id) == (seen.jti, seen.agent_id)


def test_list_argument_mints_one_credential_holding_every_rendered_scope(client: Broker, task_id: str) -> None:
    recorder = Recorder()

    @scoped_tool(["read:records:{patient_ids}", "write:notes:{patient_ids}"])
    def summarise(patient_ids: list[str], credential: Credential) -> int:
        recorder.saw("summarise", credential)
        return len(patient_ids)

    with Task(client, orch_id="o", task_id=task_id, ceiling=["read:records:*", "write:notes:*"]) as task:
        result = task.call(summarise, {"patient_ids": ["p-1", "p-2"]})
    assert result.ok
    assert result.output == 2
    expected = {"read:records:p-1", "read:records:p-2", "write:notes:p-1", "write:notes:p-2"}
    assert set(result.scope) == expected
    assert set(recorder.seen[0].scope) == expected
    assert len(recorder.seen[0].scope) == 4


def test_no_credential_outlives_its_call(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tool = _reader(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task:
        for i in range(5):
            assert task.call(tool, {"patient_id": f"p-{i}"}).ok
            assert task.live_credentials == 0
    assert recorder.runs == 5
    assert len({s.jti for s in recorder.seen}) == 5
    assert_dead(operator, recorder.seen)
    released = [e for e in task.events if isinstance(e, Released)]
    assert {e.jti for e in released} == {s.jti for s in recorder.seen}
    assert all(not e.already_dead for e in released)  # each was alive until our release killed it


def test_the_body_runs_only_with_a_credential_the_broker_confirms(
    client: Broker, operator: Broker, task_id: str
) -> None:
    confirmed: list[bool] = []

    @scoped_tool("read:records:{patient_id}")
    def read_record(patient_id: str, credential: Credential) -> str:
        claims = operator.validate(credential.access_token)  # the broker's own answer, inside the body
        confirmed.append(claims == credential.claims and claims.scope == ("read:records:" + patient_id,))
        return "ok"

    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:p-1") as task:
        assert task.call(read_record, {"patient_id": "p-1"}).ok
        for arguments in ({"patient_id": "p-2"}, {"patient_id": "*"}, {}, {"patient_id": 7}):
            assert not task.call(read_record, arguments).ok
    assert confirmed == [True]
    minted = [e for e in task.events if isinstance(e, Minted)]
    executed = [e for e in task.events if isinstance(e, Executed)]
    assert len(minted) == len(executed) == 1
    assert minted[0].jti == executed[0].jti
    assert executed[0].started >= minted[0].at


def test_another_patient_is_denied_with_the_scopes_named_and_nothing_minted(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    tool = _reader(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling=["read:records:p-1"]) as task:
        assert task.call(tool, {"patient_id": "p-1"}).ok
        denied = task.call(tool, {"patient_id": "p-2"})
    assert denied.denied
    assert not denied.ok
    assert denied.error_kind == "outside_ceiling"
    assert denied.message == "access denied: needs read:records:p-2, task holds read:records:p-1"
    assert denied.output == denied.content == denied.message
    assert recorder.runs == 1
    # The broker saw exactly one registration for this task: the allowed call's.
    minted = audit(operator, task_id, *MINTING)
    assert len(minted) == 2
    assert not any("p-2" in e.detail for e in minted)
    [event] = [e for e in task.events if e.type == "denied"]
    assert event.to_dict()["missing"] == ["read:records:p-2"]


def test_ttl_is_capped_by_the_tool_and_by_the_task_budget(client: Broker, task_id: str) -> None:
    recorder = Recorder()
    short = _reader(recorder, ttl=5)
    long = _reader(recorder, ttl=600, name="read_long")
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*", budget=20, ttl=10) as task:
        assert task.call(short, {"patient_id": "a"}).ok
        assert task.call(long, {"patient_id": "b"}).ok
    now = time.time()
    first, second = recorder.seen
    assert first.claims.exp - now <= 5 + 1
    assert second.claims.exp - now <= 20 + 1  # the budget, not the tool's 600
    ttls = [e.ttl for e in task.events if isinstance(e, Minted)]
    assert ttls[0] == 5
    assert ttls[1] <= 20


def test_unknown_tool_name_is_denied_and_nothing_minted(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tool = _reader(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*", tools=[tool]) as task:
        by_name = task.call("read_record", '{"patient_id": "p-9"}', call_id="tc-1")
        unknown = task.call("delete_everything", {"patient_id": "p-9"}, call_id="tc-2")
    assert by_name.ok
    assert by_name.call_id == "tc-1"
    assert unknown.denied
    assert unknown.error_kind == "unknown_tool"
    assert unknown.call_id == "tc-2"
    assert "unknown tool: 'delete_everything'" in unknown.content
    assert "read_record" in unknown.content
    assert recorder.runs == 1
    assert len(audit(operator, task_id, "token_issued")) == 1


def test_exposure_report_of_a_real_run(client: Broker, task_id: str) -> None:
    @scoped_tool("read:records:{patient_id}")
    def slow(patient_id: str) -> str:
        time.sleep(0.05)
        return patient_id

    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task:
        for i in range(3):
            assert task.call(slow, {"patient_id": f"p-{i}"}).ok
        task.call(slow, {"patient_id": "*"})
    report = task.exposure()
    assert len(report.calls) == 3
    assert report.denied == 1
    assert not report.unreleased
    for call in report.calls:
        assert call.run_time is not None
        assert call.run_time >= 0.05
        assert call.overhang is not None
        assert call.overhang >= 0
        assert call.window >= call.run_time
        assert call.ratio is not None
        assert call.ratio >= 1
    assert report.window.p50 >= 0.05
    assert "p95" in report.table()


@pytest.mark.parametrize("release_on", ["exception", "timeout", "keyboard-interrupt"])
def test_release_when_the_body_does_not_return(client: Broker, operator: Broker, task_id: str, release_on: str) -> None:
    recorder = Recorder()

    @scoped_tool("read:records:{patient_id}", timeout=0.3)
    def failing(patient_id: str, credential: Credential) -> str:
        recorder.saw("failing", credential)
        if release_on == "exception":
            raise RuntimeError(f"backend rejected {credential.access_token}")
        if release_on == "keyboard-interrupt":
            raise KeyboardInterrupt
        time.sleep(2)
        return "too late"

    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task:
        if release_on == "keyboard-interrupt":
            with pytest.raises(KeyboardInterrupt):
                task.call(failing, {"patient_id": "p-1"})
        else:
            result = task.call(failing, {"patient_id": "p-1"})
            assert not result.ok
            assert not result.denied
            assert result.error_kind == ("tool_error" if release_on == "exception" else "timeout")
            assert recorder.seen[0].token not in result.content
        assert task.live_credentials == 0
    [seen] = recorder.seen
    assert is_dead(operator, seen.token)
    [executed] = [e for e in task.events if isinstance(e, Executed)]
    expected = {"exception": "error", "timeout": "timeout", "keyboard-interrupt": "cancelled"}[release_on]
    assert executed.outcome == expected
    if release_on == "timeout":
        assert executed.run_time < 1.5
