"""The demo kit's approval hand-off and its stolen-token probe, apart from any one demo's story.

The desk holds a request until the page answers it (or it expires); the served UI answers through
``POST /approvals/{id}``; the terminal's flags answer at once. The probe records a broken promise when a token is
not key-bound (a copy of a bearer token would work).
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

import httpx
import pytest
from demo_support import served

import demo_medassist
import demo_tickets
from agentwrit_tools.demo import ApprovalDesk, DemoStack, ScenarioRun, copy_refused, flag_approver
from agentwrit_tools.guard import ApprovalRequest


def _request(timeout: float = 30) -> ApprovalRequest:
    return ApprovalRequest.build(
        tool="write_prescription",
        kwargs={"patient_id": "P-1042", "drug": "atorvastatin", "dose_mg": 20},
        scope=["write:prescriptions:P-1042"],
        task_id="t-1",
        orch_id="medassist",
        call_id="c-1",
        now=time.time(),
        timeout=timeout,
    )


def _ask(desk: ApprovalDesk, request: ApprovalRequest) -> tuple[threading.Thread, list[Any]]:
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(desk.approver(request)))
    waiting.start()
    return waiting, answers


def test_the_desk_holds_a_request_until_the_page_answers_it() -> None:
    desk, request = ApprovalDesk(name="clinician"), _request()
    waiting, answers = _ask(desk, request)
    answer = desk.decide(request.id, True)
    waiting.join(5)
    assert answer is not None
    assert answers == [answer]
    assert (answer.approved, answer.approver, answer.digest) == (True, "clinician", request.digest)
    assert desk.decide(request.id, False) is None  # answered already: nothing waits under that id
    assert len(desk) == 0


def test_a_click_that_arrives_before_the_request_is_parked_still_counts() -> None:
    desk, request = ApprovalDesk(), _request()
    answers: list[Any] = []

    def late_approver() -> None:
        time.sleep(0.3)
        answers.append(desk.approver(request))

    waiting = threading.Thread(target=late_approver)
    waiting.start()
    denied = desk.decide(request.id, False)  # waits (up to 2 s) for the request to arrive
    waiting.join(5)
    assert denied is not None
    assert denied.approved is False
    assert answers == [denied]


def test_an_unknown_or_expired_request_cannot_be_answered() -> None:
    desk = ApprovalDesk(arrival=0.1)
    assert desk.decide("0" * 32, True) is None
    request = _request(timeout=0.2)
    waiting, answers = _ask(desk, request)
    time.sleep(0.4)
    assert desk.decide(request.id, True) is None  # past its expiry: the guard has given up on it
    waiting.join(5)
    assert answers == [None]


def test_the_flags_answer_at_once_and_say_who_answered() -> None:
    request = _request()
    yes, no = flag_approver(True)(request), flag_approver(False)(request)
    assert (yes.approved, yes.approver) == (True, "flag-approve")
    assert (no.approved, no.approver) == (False, "flag-deny")


def test_the_served_ui_answers_through_its_route_and_refuses_the_rest() -> None:
    with served(demo_medassist.DEMO) as (url, stack), httpx.Client(base_url=url, timeout=30) as http:
        request = _request()
        desk = stack.approver.__self__  # the served UI replaced the terminal's flag with its desk
        assert isinstance(desk, ApprovalDesk)
        waiting, answers = _ask(desk, request)
        bad = http.post(f"/approvals/{request.id}", data={"decision": "maybe"})
        assert bad.status_code == 400
        answered = http.post(f"/approvals/{request.id}", data={"decision": "approve"})
        waiting.join(5)
        assert answered.status_code == 200
        assert "Approved by clinician" in answered.text
        assert answers[0].approved is True
        again = http.post(f"/approvals/{request.id}", data={"decision": "deny"})
        assert again.status_code == 409
        assert "no longer waiting" in again.text
        unknown = http.post("/approvals/<script>", data={"decision": "approve"})
        assert unknown.status_code in (404, 409)
        assert "<script>" not in unknown.text


def test_the_copy_probe_records_a_broken_promise_for_a_bearer_token() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTWRIT_", "LLM_", "OPENAI_"))}
    with DemoStack(demo_tickets.DEMO, environ=environment) as stack:  # Support Tickets mints bearer tokens
        run = ScenarioRun(stack, "copy", lambda _name, _event: None)
        try:
            with run.task(["read:billing:C-1001"], part="probe") as task:
                credential = run.launcher(task).mint("read:billing:C-1001", ttl=10)
                try:
                    assert copy_refused(run, credential, "/customers/C-1001/billing", "/customers/C-1001") is False
                finally:
                    credential.release()
        finally:
            run.close()
    assert run.failures == ["the broker did not bind the token to its agent's key: a copy would work"]


@pytest.mark.parametrize("flag", ["--approve", "--deny"])
def test_the_flags_are_exclusive(flag: str) -> None:
    from demo_support import run_cli

    done = run_cli(["demo", "medassist", "--scenario", "happy-path", flag, "--ask"])
    assert done.returncode == 2
    assert re.search(r"not allowed with argument", done.stderr)
