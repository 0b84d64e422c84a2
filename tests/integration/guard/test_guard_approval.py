"""Approval: a dangerous call asks a person first, and its credential exists only after they said yes.

Against the real broker: approve, deny, timeout, arguments changed between approval and call, an approval
replayed, stale, malformed or from a failing approver; sync and async approvers on sync and async tasks; the
terminal prompt; policy patterns; the decision in the broker's audit log, and the trace as the record when the
broker keeps none. Each refusal is checked three ways: the body never ran, the trace says why, and the broker's
audit log shows nothing minted for the task.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import MINTING, audit

from agentwrit_tools import AccessDenied, AsyncBroker, Broker, Policy, ScopedTool, Task, scoped_tool
from agentwrit_tools.guard import Approval, ApprovalRequest, cli_approver

CEILING = ["write:notes:*", "read:records:*"]


class Body:
    """The tools' bodies, counting what they actually did."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, tuple[str, ...]]] = []

    def tools(self) -> tuple[ScopedTool, ScopedTool, ScopedTool]:
        @scoped_tool("write:notes:{patient_id}", ttl=30, approval=True)
        def write_note(patient_id: str, text: str, credential: Any) -> str:
            """Write a note."""
            self.runs.append((text, credential.scope))
            return "written"

        @scoped_tool("write:notes:{patient_id}", ttl=30, name="amend_note")
        def amend_note(patient_id: str, text: str, credential: Any) -> str:
            """Amend a note (needs approval only by the policy's pattern)."""
            self.runs.append((text, credential.scope))
            return "amended"

        @scoped_tool("read:records:{patient_id}", ttl=30)
        def read_record(patient_id: str, credential: Any) -> str:
            """Read a record."""
            self.runs.append(("read", credential.scope))
            return "record"

        return write_note, amend_note, read_record


@pytest.fixture
def body() -> Body:
    return Body()


@pytest.fixture
def keeps_records(broker: Any) -> bool:
    """Whether the broker under test keeps approval records (an extension). The guard suite runs on the broker with
    extensions and on the reference contract: on the latter a decision is recorded in the trace only
    (``recorded="trace"``) and the broker's audit log has none."""
    return bool(broker.settings.extensions)


def _task(client: Broker | AsyncBroker, task_id: str, approver: Any, **rules: Any) -> Task:
    policy = Policy().with_approval(approver, **rules)
    return Task(client, orch_id="medassist", task_id=task_id, ceiling=CEILING, policy=policy)


def _events(task: Task, kind: str) -> list[Any]:
    return [e for e in task.events if e.type == kind]


def _refused(
    task: Task, result: Any, reason: str, operator: Broker, task_id: str, body: Body, keeps_records: bool
) -> None:
    assert not result.ok
    assert result.denied
    assert result.error_kind == "approval_denied"
    assert body.runs == []
    [refusal] = _events(task, "approval_refused")
    assert refusal.reason == reason
    assert _events(task, "minted") == []
    [denied] = _events(task, "denied")
    assert denied.reason == "approval_denied"
    assert audit(operator, task_id, *MINTING) == []
    assert refusal.recorded == ("broker" if keeps_records else "trace")
    assert len(audit(operator, task_id, "approval_refused")) == (1 if keeps_records else 0)


# ---- approve ---------------------------------------------------------------------------------------------------


def test_an_approved_call_is_minted_after_the_yes_and_recorded(
    client: Broker, operator: Broker, task_id: str, body: Body, keeps_records: bool
) -> None:
    asked: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> Approval:
        asked.append(request)
        return request.approve("dr-house")

    write_note, *_ = body.tools()
    with _task(client, task_id, approver) as task:
        result = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
        assert result.ok
        assert result.content == "written"
    [request] = asked
    assert request.tool == "write_note"
    assert dict(request.arguments) == {"patient_id": "P-1042", "text": "rest"}
    assert request.canonical_arguments == '{"patient_id":"P-1042","text":"rest"}'
    assert request.scope == ("write:notes:P-1042",)
    assert (request.task_id, request.orch_id) == (task_id, "medassist")
    types = [e.type for e in task.events]
    assert "launch_token_issued" in types  # the task's own launch token, fetched as it started: not the call's
    call_types = [t for t in types if not t.startswith("launch_token")]
    assert call_types[:3] == ["approval_requested", "approval_granted", "minted"]
    [granted] = _events(task, "approval_granted")
    recorded = "broker" if keeps_records else "trace"
    assert (granted.approver, granted.recorded, granted.digest) == ("dr-house", recorded, request.digest)
    assert body.runs == [("rest", ("write:notes:P-1042",))]
    assert len(audit(operator, task_id, "token_issued")) == 1
    if not keeps_records:
        assert audit(operator, task_id, "approval_granted") == []
        return
    [record] = audit(operator, task_id, "approval_granted")
    assert record.outcome == "success"
    assert record.resource == request.digest
    assert "write_note needing write:notes:P-1042: approved; approver dr-house" in record.detail
    assert record.agent_id.startswith("app:")


def test_a_plain_true_approves_exactly_the_call_asked_about(client: Broker, task_id: str, body: Body) -> None:
    write_note, *_ = body.tools()
    with _task(client, task_id, lambda request: True) as task:
        assert task.call(write_note, {"patient_id": "P-1", "text": "a"}).ok
        assert task.call(write_note, {"patient_id": "P-2", "text": "b"}).ok  # each call asked, each approved
    assert len(_events(task, "approval_granted")) == 2
    assert len(body.runs) == 2


def test_the_arguments_the_approver_sees_cannot_be_changed_by_it(client: Broker, task_id: str, body: Body) -> None:
    def meddling(request: ApprovalRequest) -> bool:
        with pytest.raises(TypeError):
            request.arguments["text"] = "something else"  # type: ignore[index]
        return True

    write_note, *_ = body.tools()
    with _task(client, task_id, meddling) as task:
        assert task.call(write_note, {"patient_id": "P-1", "text": "as asked"}).ok
    assert body.runs == [("as asked", ("write:notes:P-1",))]


# ---- deny, time out, fail -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [False, None, "deny"])
def test_a_refusal_means_denied_and_nothing_minted(
    client: Broker, operator: Broker, task_id: str, body: Body, answer: Any, keeps_records: bool
) -> None:
    def approver(request: ApprovalRequest) -> Any:
        return request.deny("dr-house") if answer == "deny" else answer

    write_note, *_ = body.tools()
    with _task(client, task_id, approver) as task:
        result = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    _refused(task, result, "denied", operator, task_id, body, keeps_records)
    assert "the approver said no" in result.content


def test_no_answer_in_time_means_denied(
    client: Broker, operator: Broker, task_id: str, body: Body, keeps_records: bool
) -> None:
    def slow(request: ApprovalRequest) -> bool:
        time.sleep(2)
        return True

    write_note, *_ = body.tools()
    started = time.monotonic()
    with _task(client, task_id, slow, timeout=0.3) as task:
        result = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    assert time.monotonic() - started < 1.5
    _refused(task, result, "timeout", operator, task_id, body, keeps_records)
    assert "no answer within 0.3 s" in result.content


@pytest.mark.parametrize("failure", ["raises", "junk"])
def test_an_approver_that_fails_is_a_refusal(
    client: Broker, operator: Broker, task_id: str, body: Body, failure: str, keeps_records: bool
) -> None:
    def broken(request: ApprovalRequest) -> Any:
        if failure == "raises":
            raise RuntimeError("the approval service is down")
        return "yes please"

    write_note, *_ = body.tools()
    with _task(client, task_id, broken) as task:
        result = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    _refused(task, result, "approver_failed", operator, task_id, body, keeps_records)
    assert "down" not in result.content  # never the exception's text


def test_without_an_approver_a_call_that_needs_one_is_refused(
    client: Broker, operator: Broker, task_id: str, body: Body, keeps_records: bool
) -> None:
    write_note, *_ = body.tools()
    with Task(client, orch_id="medassist", task_id=task_id, ceiling=CEILING) as task:
        result = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    _refused(task, result, "no_approver", operator, task_id, body, keeps_records)


def test_a_raising_policy_raises_access_denied(client: Broker, task_id: str, body: Body) -> None:
    write_note, *_ = body.tools()
    policy = Policy.raise_all().with_approval(lambda request: False)
    with (
        Task(client, orch_id="medassist", task_id=task_id, ceiling=CEILING, policy=policy) as task,
        pytest.raises(AccessDenied) as refused,
    ):
        task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    assert refused.value.reason == "approval_denied"


# ---- bound to the call, single-use, short-lived ------------------------------------------------------------------


def test_an_approval_for_other_arguments_is_refused(client: Broker, operator: Broker, task_id: str, body: Body) -> None:
    seen: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> Any:
        seen.append(request)
        # Answer the second question with a yes to the first one (as a stale UI or a replayed form would).
        return False if len(seen) == 1 else seen[0].approve("dr-house")

    write_note, *_ = body.tools()
    with _task(client, task_id, approver) as task:
        first = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
        second = task.call(write_note, {"patient_id": "P-1042", "text": "stop all medication"})
    assert not first.ok
    assert not second.ok
    assert second.error_kind == "approval_denied"
    assert [e.reason for e in _events(task, "approval_refused")] == ["denied", "arguments_changed"]
    assert "approval given was for another call" in second.content
    assert body.runs == []
    assert audit(operator, task_id, *MINTING) == []


def test_an_approval_is_not_good_for_another_task(client: Broker, task_id: str, body: Body) -> None:
    kept: list[ApprovalRequest] = []
    write_note, *_ = body.tools()
    with _task(client, task_id, lambda request: kept.append(request)) as task:
        task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    with _task(client, f"{task_id}-other", lambda request: kept[0].approve("dr-house")) as other:
        result = other.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    assert result.error_kind == "approval_denied"
    assert [e.reason for e in _events(other, "approval_refused")] == ["arguments_changed"]
    assert body.runs == []


def test_an_approval_is_good_once(client: Broker, operator: Broker, task_id: str, body: Body) -> None:
    given: list[Approval] = []

    def approver(request: ApprovalRequest) -> Approval:
        if not given:
            given.append(request.approve("dr-house"))
        return given[0]  # the same approval, presented for the same call again

    write_note, *_ = body.tools()
    with _task(client, task_id, approver) as task:
        first = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
        again = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    assert first.ok
    assert again.error_kind == "approval_denied"
    assert "already used" in again.content
    assert [e.reason for e in _events(task, "approval_refused")] == ["replayed"]
    assert len(body.runs) == 1
    assert len(audit(operator, task_id, "token_issued")) == 1


def test_an_old_approval_is_refused(client: Broker, task_id: str, body: Body) -> None:
    def approver(request: ApprovalRequest) -> Approval:
        return Approval(True, request.digest, request.id, "dr-house", time.time() - 30)

    write_note, *_ = body.tools()
    with _task(client, task_id, approver, max_age=10) as task:
        result = task.call(write_note, {"patient_id": "P-1042", "text": "rest"})
    assert result.error_kind == "approval_denied"
    assert [e.reason for e in _events(task, "approval_refused")] == ["expired"]
    assert body.runs == []


# ---- which calls need approval ---------------------------------------------------------------------------------------


def test_a_policy_pattern_makes_matching_calls_ask(client: Broker, task_id: str, body: Body) -> None:
    asked: list[str] = []

    def approver(request: ApprovalRequest) -> bool:
        asked.append(request.tool)
        return True

    _, amend_note, read_record = body.tools()
    with _task(client, task_id, approver, scopes=["write:notes:*"]) as task:
        assert task.call(amend_note, {"patient_id": "P-1", "text": "x"}).ok
        assert task.call(read_record, {"patient_id": "P-1"}).ok
    assert asked == ["amend_note"]
    with Task(client, orch_id="medassist", task_id=f"{task_id}-b", ceiling=CEILING) as plain:
        assert plain.call(amend_note, {"patient_id": "P-1", "text": "x"}).ok  # no pattern, no flag: no question
    assert _events(plain, "approval_requested") == []


def test_a_refused_argument_is_refused_before_any_approver_is_bothered(
    client: Broker, task_id: str, body: Body
) -> None:
    asked: list[ApprovalRequest] = []
    write_note, *_ = body.tools()
    with _task(client, task_id, lambda request: asked.append(request) or True) as task:
        assert task.call(write_note, {"patient_id": "*", "text": "x"}).error_kind == "unsafe_argument"
        assert task.call(write_note, {"patient_id": "P-1"}).error_kind == "invalid_arguments"
    assert asked == []


# ---- approvers of every kind --------------------------------------------------------------------------------------


def test_an_async_approver_on_a_sync_task(client: Broker, task_id: str, body: Body) -> None:
    async def approver(request: ApprovalRequest) -> Approval:
        await asyncio.sleep(0.01)
        return request.approve("async-desk")

    write_note, *_ = body.tools()
    with _task(client, task_id, approver) as task:
        assert task.call(write_note, {"patient_id": "P-1", "text": "x"}).ok
    assert _events(task, "approval_granted")[0].approver == "async-desk"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["async", "sync", "slow-async", "slow-sync"])
async def test_approvers_on_an_async_task(
    aclient: AsyncBroker, operator: Broker, task_id: str, body: Body, kind: str, keeps_records: bool
) -> None:
    async def async_yes(request: ApprovalRequest) -> Approval:
        if kind == "slow-async":
            await asyncio.sleep(3)
        return request.approve("dr-house")

    def sync_yes(request: ApprovalRequest) -> Approval:
        if kind == "slow-sync":
            time.sleep(3)
        return request.approve("dr-house")

    write_note, *_ = body.tools()
    approver = async_yes if "async" in kind else sync_yes
    async with _task(aclient, task_id, approver, timeout=0.5) as task:
        result = await task.acall(write_note, {"patient_id": "P-1", "text": "x"})
    if kind.startswith("slow"):
        _refused(task, result, "timeout", operator, task_id, body, keeps_records)
    else:
        assert result.ok
        assert len(body.runs) == 1


def test_the_terminal_prompt(client: Broker, task_id: str, body: Body) -> None:
    write_note, *_ = body.tools()
    for answer, ok in (("y\n", True), ("yes\n", True), ("n\n", False), ("", False)):
        out = io.StringIO()
        approver = cli_approver(stdin=io.StringIO(answer), stdout=out, name="night-nurse")
        with _task(client, f"{task_id}-{len(answer)}-{ok}", approver) as task:
            result = task.call(write_note, {"patient_id": "P-1", "text": "\x1b[2Jall clear"})
        assert result.ok is ok
        shown = out.getvalue()
        assert "write_note" in shown
        assert "write:notes:P-1" in shown
        assert "\x1b" not in shown  # a control character cannot reach the terminal
        assert "\\u001b[2Jall clear" in shown
        assert ("approved" if ok else "refused") in shown
    assert len(body.runs) == 2


def test_approver_names_are_identifiers() -> None:
    with pytest.raises(Exception, match="plain identifier"):
        cli_approver(name="dr house; rm -rf")
    with pytest.raises(Exception, match="positive number"):
        Policy().with_approval(lambda r: True, timeout=0)
    with pytest.raises(Exception, match="scope pattern"):
        Policy().with_approval(lambda r: True, scopes=["write-notes"])


# ---- where the decision is recorded ------------------------------------------------------------------------------


@pytest.fixture
def plain_client(tmp_path: Any) -> Iterator[tuple[Any, Broker]]:
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker(db_path=tmp_path / "plain.db", extensions=False) as running:
        app = running.create_app("approvals-plain", CEILING)
        with Broker(running.url, app.client_id, app.client_secret) as client:
            yield running, client


def test_without_the_extension_the_trace_is_the_record(plain_client: tuple[Any, Broker], body: Body) -> None:
    _, client = plain_client
    write_note, *_ = body.tools()
    with _task(client, "plain-task", lambda request: request.approve("dr-house")) as task:
        assert task.call(write_note, {"patient_id": "P-1", "text": "x"}).ok
    [granted] = _events(task, "approval_granted")
    assert granted.recorded == "trace"


def test_a_yes_the_broker_cannot_record_is_not_acted_on(
    client: Broker, operator: Broker, task_id: str, body: Body, keeps_records: bool
) -> None:
    @scoped_tool("write:notes:{patient_ids}", ttl=30, approval=True)
    def bulk_note(patient_ids: list[str], text: str) -> str:
        """Write one note into many charts."""
        body.runs.append((text, ()))
        return "written"

    many = [f"P-{i}" for i in range(40)]  # 40 scopes: more than an approval record may name
    with _task(client, task_id, lambda request: request.approve("dr-house")) as task:
        result = task.call(bulk_note, {"patient_ids": many, "text": "x"})
    if not keeps_records:  # nothing to refuse the record: the trace is the record, and the yes stands
        assert result.ok
        [granted] = _events(task, "approval_granted")
        assert granted.recorded == "trace"
        assert body.runs == [("x", ())]
        return
    assert result.error_kind == "approval_denied"
    [refused] = _events(task, "approval_refused")
    assert (refused.reason, refused.recorded) == ("not_recorded", "failed")
    assert body.runs == []
    assert audit(operator, task_id, *MINTING) == []
