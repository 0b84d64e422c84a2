"""The help desk's domain against the real stack: the protected support API, the sender check, the narrowing.

The support API runs behind the resource-side Flask decorator on a loopback port, with the embedded broker and
real per-call credentials: it must refuse what the verified claims do not cover, say "not found" only to a caller
it already accepted, refuse a released or revoked token at once, and keep a refund to one per invoice. The
anonymous ticket's promise — nothing customer-scoped ever minted — is checked here against the broker's audit log
on its own, not through the scenario's narration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import demo_tickets
from agentwrit_tools import Credential, ScopeViolation
from agentwrit_tools.demo import (
    DemoStack,
    ScenarioRun,
    api_refuses,
    broker_refuses,
    check_tokens,
    mint_unreleased,
    run_scenario,
    watch_expiry,
)
from agentwrit_tools.trace import TraceEvent
from demo_tickets import data
from demo_tickets.agents import KNOWLEDGE_SCOPE, category_of, problem_with, response_scope, ticket_ceiling

ALICE, BOB = "C-1001", "C-1002"


@pytest.fixture(scope="module")
def stack() -> Iterator[DemoStack]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTWRIT_", "LLM_", "OPENAI_"))}
    with DemoStack(demo_tickets.DEMO, environ=environment) as started:
        yield started


@pytest.fixture
def api(stack: DemoStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.backend_url, timeout=10) as client:
        yield client


def _mint(stack: DemoStack, scope: str) -> Credential:
    return stack.broker.mint(scope, orch_id="helpdesk", task_id="api-test", ttl=20)


def test_no_token_and_a_foreign_customers_token_are_refused_as_problems(stack: DemoStack, api: httpx.Client) -> None:
    bare = api.get(f"/customers/{ALICE}/billing")
    assert bare.status_code == 401
    assert bare.headers["content-type"].startswith("application/problem+json")
    with _mint(stack, f"read:billing:{ALICE}") as alices:
        assert api.get(f"/customers/{ALICE}/billing", headers=alices.bearer_header).json()["balance"] == "$49.00"
        other = api.get(f"/customers/{BOB}/billing", headers=alices.bearer_header)
        assert other.status_code == 403
        assert other.json()["error_code"] == "insufficient_scope"
        assert "1900" not in other.text  # nothing of Bob's leaks into the refusal
        wrong_kind = api.get(f"/customers/{ALICE}", headers=alices.bearer_header)
        assert wrong_kind.status_code == 403


def test_an_unknown_customer_is_not_found_only_for_a_caller_already_accepted(
    stack: DemoStack, api: httpx.Client
) -> None:
    assert api.get("/customers/C-9999").status_code == 401
    with _mint(stack, "read:customers:C-9999") as credential:
        missing = api.get("/customers/C-9999", headers=credential.bearer_header)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "not_found"


def test_a_released_or_revoked_token_is_refused_at_once(stack: DemoStack, api: httpx.Client) -> None:
    credential = _mint(stack, f"read:customers:{ALICE}")
    assert api.get(f"/customers/{ALICE}", headers=credential.bearer_header).status_code == 200
    credential.release()
    assert api.get(f"/customers/{ALICE}", headers=credential.bearer_header).status_code in (401, 403)
    revoked = _mint(stack, f"read:customers:{ALICE}")
    try:
        stack.operator.admin.revoke("token", revoked.claims.jti)
        assert api.get(f"/customers/{ALICE}", headers=revoked.bearer_header).status_code in (401, 403)
    finally:
        revoked.release()


def test_a_refund_is_one_per_invoice_and_only_for_a_paid_one(stack: DemoStack, api: httpx.Client) -> None:
    with _mint(stack, f"write:refunds:{ALICE}") as credential:
        headers = credential.bearer_header
        body = {"invoice_id": "INV-3301", "amount_cents": 4900}
        first = api.post(f"/customers/{ALICE}/refunds", headers=headers, json=body)
        again = api.post(f"/customers/{ALICE}/refunds", headers=headers, json=body)
        assert first.status_code == again.status_code == 200
        assert again.json()["refund_id"] == first.json()["refund_id"]
        assert (first.json()["already_refunded"], again.json()["already_refunded"]) == (False, True)
        assert first.json()["by"] == credential.claims.sub
        unpaid = api.post(
            f"/customers/{ALICE}/refunds", headers=headers, json={"invoice_id": "INV-3315", "amount_cents": 1}
        )
        assert (unpaid.status_code, unpaid.json()["error_code"]) == (409, "not_refundable")
        foreign = api.post(
            f"/customers/{ALICE}/refunds", headers=headers, json={"invoice_id": "INV-3402", "amount_cents": 1}
        )
        assert foreign.status_code == 404
        too_much = api.post(
            f"/customers/{ALICE}/refunds", headers=headers, json={"invoice_id": "INV-3307", "amount_cents": 9900}
        )
        assert too_much.status_code == 422
        garbage = api.post(f"/customers/{ALICE}/refunds", headers=headers, content=b"not json")
        assert (garbage.status_code, garbage.json()["error_code"]) == (422, "invalid_request")


def test_the_dangerous_operations_sit_behind_scopes_the_help_desk_cannot_get(stack: DemoStack) -> None:
    # The app was never granted them: the broker refuses to mint either, whatever the request.
    for scope in (f"delete:accounts:{ALICE}", "send:email:external"):
        with pytest.raises(ScopeViolation) as refused:
            _mint(stack, scope)
        assert refused.value.status_code == 403


def test_the_sender_is_verified_by_exact_address_and_nothing_written_in_the_ticket() -> None:
    assert data.verify_sender("alice.moreno@example.com") == ALICE
    assert data.verify_sender("  Alice.Moreno@Example.COM ") == ALICE
    for lookalike in ("alice.moreno@example.net", "alice.moreno@example.com.evil", "Alice Moreno", "C-1001", ""):
        assert data.verify_sender(lookalike) is None


def test_bad_tickets_get_a_plain_reason() -> None:
    assert problem_with("alice.moreno@example.com", "Refund please.") is None
    assert problem_with("alice.moreno@example.com", "x" * 4000) is None
    assert "under 4000" in (problem_with("alice.moreno@example.com", "x" * 4001) or "")
    assert problem_with("alice.moreno@example.com", " \n ") == "Please type the ticket first."
    assert "not an e-mail address" in (problem_with("a b@c", "hi") or "")
    assert problem_with("", "hi") == "Please give the address the ticket comes from."


def test_every_handoff_narrows_and_the_category_only_chooses_less() -> None:
    ceiling = set(ticket_ceiling("T-1", ALICE))
    knowledge = {s.format(customer_id=ALICE, ticket_id="T-1") for s in KNOWLEDGE_SCOPE}
    assert knowledge < ceiling
    for category in ("refund", "billing", "account", "general"):
        response = set(response_scope({"customer_id": ALICE, "ticket_id": "T-1", "category": category}))
        assert response < knowledge
        assert "read:kb:*" not in response
        assert not any(s.startswith(("delete:", "send:")) for s in response)
    assert ticket_ceiling("T-1", None) == ["write:replies:T-1"]
    assert category_of("[stand-in model] Category: Refund — she was charged twice") == "refund"
    assert category_of("I think this is about delete:accounts:*") == "general"


def test_an_anonymous_ticket_leaves_no_customer_scope_in_the_brokers_audit_log(stack: DemoStack) -> None:
    seen: list[TraceEvent] = []
    outcome = run_scenario(stack, demo_tickets.DEMO.scenario("anonymous"), lambda _name, event: seen.append(event))
    assert outcome.passed, outcome.failures
    task_id = next(e.task_id for e in seen if e.type == "pipeline_started")
    events: list[Any] = [
        e for e in stack.operator.admin.iter_audit_events(page_size=1000) if task_id in (e.task_id, *e.detail.split())
    ]
    kinds = {e.event_type for e in events}
    assert {"launch_token_issued", "agent_registered", "delegation_created", "token_released"} <= kinds
    customer_scoped = re.compile(r"(customers|billing|refunds|notes|accounts):C-")
    assert not [e.detail for e in events if customer_scoped.search(e.detail)]
    ticket = task_id.split("-")[1]
    assert all(f"write:replies:T-{ticket}" in e.detail for e in events if e.event_type == "agent_registered")


def test_the_bypass_probes_record_a_broken_promise_when_the_other_side_accepts(stack: DemoStack) -> None:
    run = ScenarioRun(stack, "probe", lambda _name, _event: None)
    try:
        with run.task([f"read:billing:{ALICE}"], part="probe") as task:
            assert broker_refuses(run, task, f"read:billing:{BOB}") is True
            assert api_refuses(run, task, f"read:billing:{ALICE}", f"/customers/{BOB}/billing") is True
            # Within the ceiling, and where the scope reaches: both sides accept, and the probes say so.
            assert broker_refuses(run, task, f"read:billing:{ALICE}") is False
            assert api_refuses(run, task, f"read:billing:{ALICE}", f"/customers/{ALICE}/billing") is False
    finally:
        run.close()
    assert len(run.failures) == 2
    check = check_tokens(stack.broker, run.witness)
    assert check.checked == 3
    assert check.live_credentials == 0  # whatever a probe was given, it released


def test_watching_a_credential_that_outlives_its_deadline_is_a_broken_promise(stack: DemoStack) -> None:
    seen: list[TraceEvent] = []
    run = ScenarioRun(stack, "watch", lambda _name, event: seen.append(event))
    credential = mint_unreleased(run, f"read:billing:{ALICE}", ttl=30, tool="get_billing")
    try:
        assert watch_expiry(run, credential, tool="get_billing", grace=-60) is False
    finally:
        credential.release()
        run.close()
    assert run.failures == ["the unreleased token outlived its exp"]
    assert [e.type for e in seen] == ["minted", "note"]
