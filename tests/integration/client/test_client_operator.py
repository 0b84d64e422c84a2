"""Operator API against the real broker: apps, launch tokens, revocation at four levels, audit, health, metrics."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from client_helpers import new_app

from agentwrit_tools import (
    AsyncBroker,
    Broker,
    ConfigurationError,
    NotFound,
    ScopeViolation,
    TokenInvalid,
    Unauthorized,
)
from agentwrit_tools.client import AsyncCredential, Credential

_ids = itertools.count()


@pytest.fixture
def operator(any_broker: Any) -> Iterator[Broker]:
    app = new_app(any_broker)
    with Broker(any_broker.url, app.client_id, app.client_secret, admin_secret=any_broker.admin_secret) as broker:
        yield broker


def _dead(broker: Broker, cred: Credential | AsyncCredential) -> bool:
    try:
        broker.validate(cred.access_token)
    except TokenInvalid:
        return True
    return False


def test_apps_crud(operator: Broker) -> None:
    name = f"ops-app-{next(_ids)}"
    created = operator.admin.create_app(name, ["read:files:*"], token_ttl=600)
    assert created.client_secret
    assert created.client_secret not in repr(created)
    assert created.scopes == ("read:files:*",)
    assert created.token_ttl == 600
    fetched = operator.admin.get_app(created.app_id)
    assert fetched.client_secret is None
    assert fetched.client_id == created.client_id
    assert created.app_id in {a.app_id for a in operator.admin.list_apps()}
    updated = operator.admin.update_app(created.app_id, scopes=["read:files:*", "write:files:*"], token_ttl=900)
    assert set(updated.scopes) == {"read:files:*", "write:files:*"}
    assert updated.token_ttl == 900

    with Broker(operator.broker_url, created.client_id, created.client_secret) as app_client:
        app_client.mint("write:files:f1", orch_id="o", task_id="t").release()
        gone = operator.admin.delete_app(created.app_id)
        assert gone.status == "inactive"
        again = Broker(operator.broker_url, created.client_id, created.client_secret)
        with again, pytest.raises(Unauthorized):
            again.mint("read:files:f1", orch_id="o", task_id="t")
    with pytest.raises(NotFound):
        operator.admin.get_app("app-does-not-exist")


@pytest.mark.parametrize("level", ["token", "agent", "task", "chain"])
def test_revocation_at_each_level(operator: Broker, level: str, extensions: bool) -> None:
    task = f"t-revoke-{level}-{next(_ids)}"
    root = operator.mint("read:data:*", orch_id="o", task_id=task)
    other = operator.mint("read:data:2", orch_id="o", task_id=task)
    delegated = root.delegate(other, "read:data:2")
    target = {"token": root.claims.jti, "agent": root.agent_id, "task": task, "chain": root.agent_id}[level]
    result = operator.admin.revoke(level, target)  # type: ignore[arg-type]
    assert result.revoked
    assert (result.level, result.target) == (level, target)
    assert result.count >= 1
    expected = {
        "token": {"root": True, "other": False, "delegated": extensions},  # cascade is an extension
        "agent": {"root": True, "other": False, "delegated": extensions},
        "task": {"root": True, "other": True, "delegated": True},
        "chain": {"root": False, "other": False, "delegated": True},  # the chain's members, not its root
    }[level]
    assert {
        "root": _dead(operator, root),
        "other": _dead(operator, other),
        "delegated": _dead(operator, delegated),
    } == (expected)
    for cred in (root, other, delegated):
        cred.release()


def test_bad_revocation_requests_are_refused_before_sending(operator: Broker) -> None:
    with pytest.raises(ConfigurationError):
        operator.admin.revoke("everything", "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        operator.admin.revoke("token", "")


def test_audit_pages_and_iterates(operator: Broker) -> None:
    task = f"t-audit-{next(_ids)}"
    for _ in range(3):
        operator.mint("read:data:a", orch_id="o", task_id=task).release()
    page = operator.admin.audit_events(task_id=task, limit=2)
    assert page.total >= 6
    assert len(page.events) == 2
    everything = list(operator.admin.iter_audit_events(task_id=task, page_size=2))
    assert len(everything) == page.total
    assert len({e.id for e in everything}) == len(everything)
    assert {"agent_registered", "token_released"} <= {e.event_type for e in everything}
    released = list(operator.admin.iter_audit_events(task_id=task, event_type="token_released"))
    assert len(released) == 3
    assert all(e.hash and e.prev_hash for e in everything)


def test_health_and_metrics(operator: Broker) -> None:
    health = operator.health()
    assert health.status == "ok"
    assert health.version == "2.0.0"
    assert health.db_connected
    text = operator.metrics()
    assert "agentwrit_tokens_issued_total" in text
    assert "agentwrit_active_agents" in text


def test_wrong_admin_secret_is_unauthorized(any_broker: Any) -> None:
    with Broker(any_broker.url, admin_secret="wrong-secret") as broker, pytest.raises(Unauthorized):
        broker.admin.list_apps()


@pytest.mark.anyio
async def test_async_operator(any_broker: Any) -> None:
    app = new_app(any_broker)
    async with AsyncBroker(
        any_broker.url, app.client_id, app.client_secret, admin_secret=any_broker.admin_secret
    ) as broker:
        task = f"t-async-audit-{next(_ids)}"
        cred = await broker.mint("read:data:z", orch_id="o", task_id=task)
        result = await broker.admin.revoke("task", task)
        assert result.count >= 1
        with pytest.raises(TokenInvalid):
            await broker.validate(cred.access_token)
        events = [e async for e in broker.admin.iter_audit_events(task_id=task, page_size=1)]
        page = await broker.admin.audit_events(task_id=task)
        assert len(events) == page.total >= 2
        assert app.app_id in {a.app_id for a in await broker.admin.list_apps()}
        assert (await broker.health()).status == "ok"
        assert "agentwrit_" in await broker.metrics()
        launch = await broker.admin.create_launch_token("async-ops", "read:data:*", max_ttl=30)
        minted = await broker.mint("read:data:q", orch_id="o", task_id="t", launch_token=launch.launch_token)
        assert minted.scope == ("read:data:q",)
        await minted.release()


def test_an_operator_binds_a_launch_token_to_a_task_and_revokes_it(operator: Broker, extensions: bool) -> None:
    """Extension: ``create_launch_token(task_id=...)`` and ``revoke_launch_tokens``; the reference contract has
    neither binding (the field is ignored) nor the endpoint (404 → NotFound)."""
    task = f"ops-launch-{next(_ids)}"
    launch = operator.admin.create_launch_token("ops", ["read:files:*"], single_use=False, ttl=60, task_id=task)
    assert launch.policy.task_id == (task if extensions else None)
    first = operator.mint("read:files:a", orch_id="o", task_id=task, launch_token=launch.launch_token)
    first.release()
    if not extensions:
        with pytest.raises(NotFound):
            operator.admin.revoke_launch_tokens(task)
        return
    with pytest.raises(ScopeViolation):  # bound to its task: another task's agent is refused
        operator.mint("read:files:a", orch_id="o", task_id=task + "-x", launch_token=launch.launch_token)
    assert operator.admin.revoke_launch_tokens(task) == 1
    assert operator.admin.revoke_launch_tokens(task) == 0  # spent already
    with pytest.raises(Unauthorized):
        operator.mint("read:files:a", orch_id="o", task_id=task, launch_token=launch.launch_token)
    with pytest.raises(ConfigurationError):
        operator.admin.revoke_launch_tokens("")
