"""The fast path's broker extensions over the raw wire: nonce batches, and launch tokens bound to a task that can be
revoked (by the task, one by one, or with the task's ``level: task`` revocation) — and none of it with
``extensions=False``, where the broker ignores ``task_id`` as the reference one does.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from agentwrit_tools.broker import BrokerSettings

from ._wire import App, Wire, assert_problem, bearer, ok, unique
from .conftest import StartBroker

CEILING = ["read:fast:*"]


def _app_launch(wire: Wire, app: App, **opts: Any) -> dict[str, Any]:
    auth = bearer(wire.app_token(app))
    body = ok(wire.launch_token_response(CEILING, auth=auth, path="/v1/app/launch-tokens", **opts), 201)
    return dict(body)


def _register(wire: Wire, launch_token: str, task_id: str, *, nonce: str | None = None) -> Any:
    return wire.register(wire.register_body(launch_token, ["read:fast:x"], task_id=task_id, nonce=nonce))


def _revoke_launch(wire: Wire, auth: dict[str, str], **body: Any) -> Any:
    return wire.post("/v1/launch-tokens/revoke", json=body, headers=auth)


# --- nonce batches --------------------------------------------------------------------------------------------------


def test_a_batch_of_nonces_each_registers_once(wire: Wire) -> None:
    app = wire.create_app(CEILING)
    body = ok(wire.post("/v1/challenges", json={"count": 5}, headers=bearer(wire.app_token(app))))
    assert body["expires_in"] == 30
    nonces = body["nonces"]
    assert len(nonces) == len(set(nonces)) == 5
    launch = _app_launch(wire, app, single_use=False)["launch_token"]
    for nonce in nonces:
        ok(_register(wire, launch, unique("task"), nonce=nonce))
    # Single use: a nonce from a batch is spent like any other.
    assert_problem(_register(wire, launch, unique("task"), nonce=nonces[0]), 401, "unauthorized")


def test_batches_need_an_app_or_the_operator_and_a_sane_count(wire: Wire) -> None:
    app = wire.create_app(CEILING)
    auth = bearer(wire.app_token(app))
    assert_problem(wire.post("/v1/challenges", json={"count": 2}), 401, "unauthorized")
    agent = wire.mint(["read:fast:y"], allowed=CEILING)
    assert_problem(wire.post("/v1/challenges", json={"count": 2}, headers=bearer(agent.token)), 403)
    for count in (0, 65, "3", True, -1):
        assert_problem(wire.post("/v1/challenges", json={"count": count}, headers=auth), 400, "invalid_request")
    assert len(ok(wire.post("/v1/challenges", json={"count": 64}, headers=wire.admin()))["nonces"]) == 64


def test_batched_nonces_expire_with_the_nonce_ttl(start_broker: StartBroker) -> None:
    with start_broker(settings=BrokerSettings(nonce_ttl=1)) as wire:
        app = wire.create_app(CEILING)
        nonce = ok(wire.post("/v1/challenges", json={"count": 1}, headers=bearer(wire.app_token(app))))["nonces"][0]
        launch = _app_launch(wire, app, single_use=False)["launch_token"]
        time.sleep(1.2)
        assert_problem(_register(wire, launch, "t-1", nonce=nonce), 401, "unauthorized")


# --- task-bound launch tokens -------------------------------------------------------------------------------------


def test_a_task_bound_launch_token_registers_only_for_its_task(wire: Wire) -> None:
    app = wire.create_app(CEILING)
    task = unique("task")
    answer = _app_launch(wire, app, task_id=task)
    assert answer["policy"]["task_id"] == task
    launch = answer["launch_token"]
    refused = _register(wire, launch, unique("other"))
    assert_problem(refused, 403, "scope_violation", detail_contains="another task")
    # Refused before anything was consumed: the single-use token still registers for its own task.
    agent = ok(_register(wire, launch, task))
    assert "/" + task + "/" in agent["agent_id"]


def test_an_app_revokes_its_tasks_launch_tokens(wire: Wire) -> None:
    app = wire.create_app(CEILING)
    task = unique("task")
    first = _app_launch(wire, app, task_id=task, single_use=False)["launch_token"]
    second = _app_launch(wire, app, task_id=task, single_use=False)["launch_token"]
    elsewhere = unique("task")
    other_task = _app_launch(wire, app, task_id=elsewhere, single_use=False)["launch_token"]
    ok(_register(wire, first, task))
    body = ok(_revoke_launch(wire, bearer(wire.app_token(app)), task_id=task))
    assert body == {"revoked": True, "count": 2}
    for spent in (first, second):
        assert_problem(_register(wire, spent, task), 401, "unauthorized")
    ok(_register(wire, other_task, elsewhere))  # another task's launch token is untouched
    events = wire.audit(task_id=task, event_type="token_revoked")["events"]
    assert any("2 unused" in e["detail"] for e in events)
    assert all(first not in e["detail"] and second not in e["detail"] for e in events)


def test_presented_launch_tokens_are_revoked_exactly_and_only_the_apps_own(wire: Wire) -> None:
    app, stranger = wire.create_app(CEILING), wire.create_app(CEILING)
    task = unique("task")
    mine = _app_launch(wire, app, task_id=task, single_use=False)["launch_token"]
    kept = _app_launch(wire, app, task_id=task, single_use=False)["launch_token"]
    # Another app cannot spend them, even holding them: nothing of its own was presented.
    assert ok(_revoke_launch(wire, bearer(wire.app_token(stranger)), launch_tokens=[mine]))["count"] == 0
    assert ok(_revoke_launch(wire, bearer(wire.app_token(stranger)), task_id=task))["count"] == 0
    ok(_register(wire, mine, task))
    assert ok(_revoke_launch(wire, bearer(wire.app_token(app)), launch_tokens=[mine]))["count"] == 1
    assert_problem(_register(wire, mine, task), 401, "unauthorized")
    ok(_register(wire, kept, task))  # only what was presented
    assert ok(_revoke_launch(wire, bearer(wire.app_token(app)), launch_tokens=[mine]))["count"] == 0  # idempotent


def test_revoke_requests_are_checked(wire: Wire) -> None:
    app = wire.create_app(CEILING)
    auth = bearer(wire.app_token(app))
    assert_problem(_revoke_launch(wire, {}, task_id="t"), 401, "unauthorized")
    agent = wire.mint(["read:fast:z"], allowed=CEILING)
    assert_problem(_revoke_launch(wire, bearer(agent.token), task_id=agent.task_id), 403)
    for body in ({}, {"task_id": "a b"}, {"launch_tokens": []}, {"launch_tokens": ["nope"]}, {"launch_tokens": "x"}):
        assert_problem(_revoke_launch(wire, auth, **body), 400, "invalid_request")
    both = {"task_id": "t", "launch_tokens": ["0" * 64]}
    assert_problem(_revoke_launch(wire, auth, **both), 400, "invalid_request")


def test_task_level_revocation_also_spends_the_tasks_launch_tokens(wire: Wire) -> None:
    app = wire.create_app(CEILING)
    task = unique("task")
    launch = _app_launch(wire, app, task_id=task, single_use=False)["launch_token"]
    agent = ok(_register(wire, launch, task))
    ok(wire.revoke("task", task))
    wire.assert_invalid(agent["access_token"])
    assert_problem(_register(wire, launch, task), 401, "unauthorized")
    events = wire.audit(task_id=task, event_type="token_revoked")["events"]
    assert any("1 unused launch token" in e["detail"] for e in events)


def test_without_extensions_task_id_is_ignored_and_nothing_is_served(start_broker: StartBroker) -> None:
    with start_broker(extensions=False) as wire:
        app = wire.create_app(CEILING)
        answer = _app_launch(wire, app, task_id="task-a", single_use=False)
        assert "task_id" not in answer["policy"]
        ok(_register(wire, answer["launch_token"], "task-b"))  # unbound, as on the reference broker
        auth = bearer(wire.app_token(app))
        assert_problem(wire.post("/v1/challenges", json={"count": 2}, headers=auth), 404, routed=False)
        assert_problem(_revoke_launch(wire, auth, task_id="task-a"), 404, routed=False)


def test_a_key_off_the_curve_is_still_named_as_such(wire: Wire) -> None:
    """Registration proves a key is a curve point by the signature it verifies (the cheaper check comes first);
    a refused key is still refused with the full check's reason."""
    body = wire.register_body(wire.launch_token(CEILING), ["read:fast:x"])
    body["public_key"] = base64.b64encode((2).to_bytes(32, "little")).decode()  # y = 2: no point has it
    assert_problem(wire.register(body), 401, "unauthorized", detail_contains="not a curve point")
