"""`GET /v1/audit/events`: a hash chain anyone can re-verify, filters, pagination, and no secrets in it."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

from ._wire import RFC3339, Wire, assert_problem, bearer, ok, parse_time, unique, verify_chain, walk_json

EVENT_FIELDS = {
    "id",
    "timestamp",
    "event_type",
    "agent_id",
    "task_id",
    "orch_id",
    "detail",
    "resource",
    "outcome",
    "deleg_depth",
    "deleg_chain_hash",
    "bytes_transferred",
    "hash",
    "prev_hash",
}


def _num(event_id: str) -> int:
    assert event_id.startswith("evt-"), event_id
    return int(event_id[4:])


def _busy_flow(wire: Wire) -> dict[str, Any]:
    """Exercise most event types once; return every secret and token the flow saw."""
    # Wrong guesses are secrets too: a near-miss of the real secret must not end up in a log.
    seen: dict[str, Any] = {"secrets": [wire.admin_secret, "wrong-secret-value", "not-it-at-all"], "tokens": []}
    wire.post("/v1/admin/auth", json={"secret": "wrong-secret-value"})
    seen["tokens"].append(wire.admin_token())
    app = wire.create_app(["read:data:*", "write:data:*"])
    seen["secrets"].append(app.client_secret)
    wire.app_login(app, secret="not-it-at-all")
    app_token = wire.app_token(app)
    seen["tokens"].append(app_token)
    wire.client.put(f"/v1/admin/apps/{app.app_id}", json={"token_ttl": 900}, headers=wire.admin())

    lt = ok(wire.launch_token_response(["read:data:*"], auth=bearer(app_token), path="/v1/app/launch-tokens"), 201)
    seen["tokens"].append(lt["launch_token"])
    wire.launch_token_response(["delete:all:*"], auth=bearer(app_token), path="/v1/app/launch-tokens")
    scope_violation = wire.register_body(lt["launch_token"], ["write:data:x"], task_id="task-audit")
    wire.register(scope_violation)
    a = wire.mint(["read:data:*"], launch_token=lt["launch_token"], task_id="task-audit", orch_id="orch-audit")
    b = wire.mint(["read:other:z"], task_id="task-other")
    renewed = ok(wire.renew(a.token))["access_token"]
    delegated = ok(wire.delegate(renewed, b.agent_id, ["read:data:x"]))["access_token"]
    wire.delegate(renewed, b.agent_id, ["write:data:x"])
    wire.release(delegated)
    wire.revoke("token", b.jti)
    wire.client.delete(f"/v1/admin/apps/{app.app_id}", headers=wire.admin())
    seen["tokens"] += [a.token, b.token, renewed, delegated]
    seen.update(a=a, b=b, app=app)
    return seen


def test_chain_verifies_and_carries_no_secrets(fresh_wire: Wire) -> None:
    seen = _busy_flow(fresh_wire)
    events = fresh_wire.all_events()
    assert len(events) >= 15
    assert events[0]["prev_hash"] == "0" * 64
    verify_chain(events)
    assert [_num(e["id"]) for e in events] == list(range(1, len(events) + 1))
    assert events[0]["id"] == "evt-000001"
    for event in events:
        assert set(event) >= EVENT_FIELDS, event
        assert event["outcome"] in {"success", "denied"}, event
        assert RFC3339.fullmatch(event["timestamp"]), event

    types = {e["event_type"] for e in events}
    expected = {
        "admin_auth",
        "admin_auth_failed",
        "app_registered",
        "app_authenticated",
        "app_auth_failed",
        "app_updated",
        "app_deregistered",
        "launch_token_issued",
        "agent_registered",
        "token_renewed",
        "token_released",
        "token_revoked",
        "delegation_created",
    }
    assert expected <= types, sorted(expected - types)
    assert types & {"scope_ceiling_exceeded", "launch_token_denied"}, sorted(types)
    assert types & {"registration_policy_violation", "scope_violation"}, sorted(types)
    assert types & {"delegation_attenuation_violation", "scope_violation"}, sorted(types)
    for event in events:
        kind = event["event_type"]
        if kind.endswith(("_failed", "_violation", "_denied", "_exceeded")) or kind == "app_rate_limited":
            assert event["outcome"] == "denied", event
        if kind in {"admin_auth", "app_registered", "app_authenticated", "agent_registered", "delegation_created"}:
            assert event["outcome"] == "success", event

    a = seen["a"]
    registered = [e for e in events if e["event_type"] == "agent_registered" and e["agent_id"] == a.agent_id]
    assert len(registered) == 1, registered
    assert registered[0]["task_id"] == "task-audit"
    assert registered[0]["orch_id"] == "orch-audit"

    text = [s for e in events for s in walk_json(e)]
    blob = "\n".join(text)
    for secret in seen["secrets"]:
        assert secret not in blob
    for token in seen["tokens"]:
        assert token not in blob
        assert token.split(".")[-1] not in blob  # not even a token's signature part


def test_health_counts_the_audit_events(fresh_wire: Wire) -> None:
    fresh_wire.mint(["read:data:x"])
    total = fresh_wire.audit()["total"]
    health = ok(fresh_wire.get("/v1/health"))
    assert health["audit_events_count"] >= total >= 3


def test_chain_is_append_only(fresh_wire: Wire) -> None:
    fresh_wire.mint(["read:data:x"])
    first = fresh_wire.all_events()
    fresh_wire.mint(["read:data:y"])
    second = fresh_wire.all_events()
    assert len(second) > len(first)
    assert second[: len(first)] == first
    verify_chain(second)


def test_filters(fresh_wire: Wire) -> None:
    w = fresh_wire
    lt = w.launch_token(["read:data:*"], single_use=False)
    one = w.mint(["read:data:x"], launch_token=lt, task_id="task-one")
    w.mint(["read:data:y"], launch_token=lt, task_id="task-two")
    w.mint(["read:data:z"], launch_token=lt, task_id="task-two")
    w.post("/v1/admin/auth", json={"secret": "nope"})

    registered = w.audit(event_type="agent_registered")
    assert registered["total"] == 3
    assert {e["event_type"] for e in registered["events"]} == {"agent_registered"}

    mine = w.audit(agent_id=one.agent_id)
    assert mine["total"] >= 1
    assert all(e["agent_id"] == one.agent_id for e in mine["events"])
    assert "agent_registered" in {e["event_type"] for e in mine["events"]}

    task_two = w.audit(task_id="task-two")
    assert task_two["total"] >= 2
    assert all(e["task_id"] == "task-two" for e in task_two["events"])

    denied = w.audit(outcome="denied")
    assert denied["total"] >= 1
    assert all(e["outcome"] == "denied" for e in denied["events"])
    assert "admin_auth_failed" in {e["event_type"] for e in denied["events"]}

    both = w.audit(task_id="task-two", event_type="agent_registered")
    assert both["total"] == 2

    nothing = w.audit(event_type="no_such_event")
    assert nothing["total"] == 0
    assert nothing["events"] == []


def test_since_and_until(fresh_wire: Wire) -> None:
    w = fresh_wire
    w.mint(["read:data:x"], task_id="phase-one")
    time.sleep(1.1)
    gap_time = datetime.now(timezone.utc)
    gap = gap_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(1.1)
    w.mint(["read:data:y"], task_id="phase-two")

    full = w.all_events()
    before = {e["id"] for e in full if parse_time(e["timestamp"]) < gap_time}
    after = {e["id"] for e in full if parse_time(e["timestamp"]) > gap_time}
    assert before
    assert after
    assert "phase-two" in {e["task_id"] for e in full if e["id"] in after}

    since = w.audit(since=gap, limit=1000)
    assert {e["id"] for e in since["events"]} >= after
    assert all(parse_time(e["timestamp"]) > gap_time for e in since["events"])

    until = w.audit(until=gap, limit=1000)
    assert {e["id"] for e in until["events"]} == before
    assert until["total"] == len(before)


def test_pagination(fresh_wire: Wire) -> None:
    w = fresh_wire
    lt = w.launch_token(["read:data:*"], single_use=False)
    for _ in range(4):
        w.mint(["read:data:x"], launch_token=lt)
    everything = w.all_events()
    assert len(everything) >= 9

    pages = [w.audit(limit=3, offset=off) for off in (0, 3, 6)]
    for off, page in zip((0, 3, 6), pages, strict=True):
        assert page["limit"] == 3
        assert page["offset"] == off
        assert len(page["events"]) == 3
        assert page["total"] >= len(everything)
    assert [e for p in pages for e in p["events"]] == everything[:9]

    default = w.audit()
    assert default["limit"] == 100
    assert default["offset"] == 0

    beyond = w.audit(offset=100000)
    assert beyond["events"] == []
    assert beyond["total"] >= len(everything)


def test_limit_is_capped_at_1000(fresh_wire: Wire) -> None:
    resp = fresh_wire.get("/v1/audit/events", params={"limit": 5000}, headers=fresh_wire.admin())
    if resp.status_code == 200:
        body = resp.json()
        assert body["limit"] <= 1000
        assert len(body["events"]) <= 1000
    else:
        assert_problem(resp, 400)


@pytest.mark.parametrize(
    "params",
    [{"limit": "many"}, {"offset": "x"}, {"limit": -1}, {"offset": -5}, {"since": "yesterday"}, {"until": "soon"}],
)
def test_bad_query_is_400(wire: Wire, params: dict[str, Any]) -> None:
    assert_problem(wire.get("/v1/audit/events", params=params, headers=wire.admin()), 400)


def test_audit_is_admin_only(wire: Wire) -> None:
    assert_problem(wire.get("/v1/audit/events"), 401, "unauthorized")
    agent = wire.mint(["read:data:x"], task_id=unique("task"))
    assert_problem(wire.get("/v1/audit/events", headers=bearer(agent.token)), 403, "insufficient_scope")
