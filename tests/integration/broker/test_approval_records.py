"""Extension: ``POST /v1/audit/approvals`` — an app records a person's decision on a tool call, on the raw wire.

Only app tokens write here; the body is small and exactly shaped (every id under the identifier rule, a tool name,
a SHA-256 digest, a decision and a reason from fixed lists); each app is rate-limited; the record lands in the
hash-chained audit log as ``approval_granted``/``approval_refused`` under the app's name; with the extensions off
the route does not exist.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ._wire import App, Wire, assert_problem, bearer, ok, unique, verify_chain
from .conftest import StartBroker

PATH = "/v1/audit/approvals"


def _record(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "approval_id": "0123456789abcdef0123456789abcdef",
        "task_id": unique("appr"),
        "orch_id": "medassist",
        "tool": "write_prescription",
        "scope": ["write:prescriptions:P-1042"],
        "digest": hashlib.sha256(b"the call").hexdigest(),
        "decision": "granted",
        "reason": "approved",
        "approver": "dr-house",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _post(wire: Wire, token: str, body: Any) -> Any:
    return wire.post(PATH, json=body, headers=bearer(token))


@pytest.fixture
def app_token(wire: Wire) -> str:
    return wire.app_token(wire.create_app(["write:prescriptions:*"]))


def test_an_app_records_a_decision_in_the_hash_chained_log(wire: Wire, app_token: str) -> None:
    granted = _record()
    answer = ok(_post(wire, app_token, granted), 201)
    assert answer["recorded"] is True
    refused = _record(task_id=granted["task_id"], decision="refused", reason="arguments_changed", approver=None)
    ok(_post(wire, app_token, refused), 201)
    events = wire.all_events(task_id=granted["task_id"])
    assert [e["event_type"] for e in events] == ["approval_granted", "approval_refused"]
    first, second = events
    assert first["id"] == answer["event_id"]
    assert first["outcome"] == "success"
    assert second["outcome"] == "denied"
    assert first["agent_id"].startswith("app:")
    assert first["orch_id"] == "medassist"
    assert first["resource"] == granted["digest"]
    assert "write_prescription needing write:prescriptions:P-1042: approved; approver dr-house" in first["detail"]
    assert "refused (arguments_changed); no approver" in second["detail"]
    verify_chain(wire.all_events())


def test_only_app_tokens_may_write(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"])
    assert_problem(_post(wire, agent.token, _record()), 403, "insufficient_scope")
    assert_problem(_post(wire, wire.admin_token(), _record()), 403, "insufficient_scope")
    assert_problem(wire.post(PATH, json=_record()), 401, "unauthorized")
    assert_problem(_post(wire, "not.a.token", _record()), 401, "unauthorized")


@pytest.mark.parametrize(
    "changes",
    [
        {"extra": "field"},
        {"approval_id": None},
        {"approval_id": "has space"},
        {"task_id": "../etc"},
        {"orch_id": "med\u200bassist"},
        {"tool": "write prescription"},
        {"tool": "x" * 65},
        {"scope": "write:prescriptions:P-1"},
        {"scope": []},
        {"scope": ["write:prescriptions"]},
        {"scope": [f"write:prescriptions:P-{i}" for i in range(33)]},
        {"digest": "ABCDEF" + "0" * 58},
        {"digest": "0" * 63},
        {"decision": "maybe"},
        {"reason": "because"},
        {"decision": "refused", "reason": "approved"},
        {"decision": "granted", "reason": "denied"},
        {"approver": "dr house"},
        {"approver": 7},
        {"task_id": 12},
    ],
)
def test_anything_but_the_exact_shape_is_refused(wire: Wire, app_token: str, changes: dict[str, Any]) -> None:
    body = _record(**changes)
    if changes.get("approval_id", "") is None:
        body.pop("approval_id", None)
    assert_problem(_post(wire, app_token, body), 400, "invalid_request")
    if isinstance(body.get("task_id"), str):
        assert wire.all_events(task_id=body["task_id"]) == []


def test_a_big_body_or_a_form_is_refused_before_it_is_read(wire: Wire, app_token: str) -> None:
    big = _record(padding="x" * 5000)
    assert_problem(_post(wire, app_token, big), 413, "payload_too_large")
    form = wire.post(PATH, content=b"decision=granted", headers={**bearer(app_token), "Content-Type": "text/plain"})
    assert_problem(form, 415, "unsupported_media_type")
    assert_problem(
        wire.post(
            PATH, content=json.dumps([1]).encode(), headers={**bearer(app_token), "Content-Type": "application/json"}
        ),
        400,
    )


def test_each_app_is_rate_limited(fresh_wire: Wire) -> None:
    app: App = fresh_wire.create_app(["write:prescriptions:*"])
    token = fresh_wire.app_token(app)
    statuses = [_post(fresh_wire, token, _record(task_id="flood")).status_code for _ in range(60)]
    assert statuses.count(201) >= 40
    assert 429 in statuses
    limited = _post(fresh_wire, token, _record(task_id="flood"))
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    other = fresh_wire.app_token(fresh_wire.create_app(["write:prescriptions:*"]))
    ok(_post(fresh_wire, other, _record(task_id="calm")), 201)  # another app is not held back
    written = fresh_wire.all_events(task_id="flood")
    assert len(written) == statuses.count(201)


def test_with_the_extensions_off_there_is_no_such_route(start_broker: StartBroker) -> None:
    with start_broker(extensions=False) as wire:
        token = wire.app_token(wire.create_app(["write:prescriptions:*"]))
        assert _post(wire, token, _record()).status_code == 404
