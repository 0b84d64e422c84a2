"""`POST /v1/revoke` at token, agent, task and chain level; what a revoked token can no longer do."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._wire import RENEW_FAILED, Wire, assert_problem, bearer, forge, jwt_parts, ok, resign_eddsa, unique


def _revoked(wire: Wire, level: str, target: str) -> dict[str, Any]:
    body = dict(ok(wire.revoke(level, target)))
    assert body["revoked"] is True
    assert body["level"] == level
    assert body["target"] == target
    assert isinstance(body["count"], int)
    return body


def test_token_level_revokes_exactly_that_jti(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"], single_use=False)
    victim = wire.mint(["read:data:x"], launch_token=lt)
    sibling = wire.mint(["read:data:x"], launch_token=lt, task_id=victim.task_id)
    body = _revoked(wire, "token", victim.jti)
    assert body["count"] == 1
    wire.assert_invalid(victim.token)
    assert wire.is_valid(sibling.token)


def test_revoked_token_is_refused_on_every_path(wire: Wire) -> None:
    victim = wire.mint(["read:data:*"])
    other = wire.mint(["read:other:z"])
    _revoked(wire, "token", victim.jti)
    wire.assert_invalid(victim.token)
    assert_problem(wire.renew(victim.token), 401, "unauthorized", detail=RENEW_FAILED)
    assert_problem(wire.release(victim.token), 403, "insufficient_scope")
    assert_problem(wire.delegate(victim.token, other.agent_id, ["read:data:x"]), 403, "insufficient_scope")


def test_agent_level_revokes_every_token_of_that_agent(wire: Wire) -> None:
    victim = wire.mint(["read:data:*"])
    bystander = wire.mint(["read:data:*"], task_id=victim.task_id)
    # A second token whose sub is the victim: delegated to it by the bystander.
    to_victim = ok(wire.delegate(bystander.token, victim.agent_id, ["read:data:x"]))["access_token"]
    assert wire.is_valid(to_victim)

    body = _revoked(wire, "agent", victim.agent_id)
    assert body["count"] >= 1
    wire.assert_invalid(victim.token)
    wire.assert_invalid(to_victim)
    assert wire.is_valid(bystander.token)


def test_task_level_revokes_every_token_of_that_task(wire: Wire) -> None:
    task, other_task = unique("task"), unique("task")
    lt = wire.launch_token(["read:data:*"], single_use=False)
    one = wire.mint(["read:data:x"], launch_token=lt, task_id=task)
    two = wire.mint(["read:data:y"], launch_token=lt, task_id=task, orch_id="orch-2")
    outsider = wire.mint(["read:data:x"], launch_token=lt, task_id=other_task)
    # A delegated token carries its delegator's task, so it goes too — even though its sub is the outsider.
    delegated = ok(wire.delegate(one.token, outsider.agent_id, ["read:data:x"]))["access_token"]

    body = _revoked(wire, "task", task)
    assert body["count"] >= 1
    for token in (one.token, two.token, delegated):
        wire.assert_invalid(token)
    assert wire.is_valid(outsider.token)


def test_chain_level_revokes_every_token_rooted_at_that_agent(wire: Wire) -> None:
    root = wire.mint(["read:data:*"])
    b, c = wire.mint(["read:other:z"]), wire.mint(["read:other:z"])
    to_b = ok(wire.delegate(root.token, b.agent_id, ["read:data:*"]))["access_token"]
    to_c = ok(wire.delegate(to_b, c.agent_id, ["read:data:x"]))["access_token"]
    # A chain rooted elsewhere that passes through b is not root's chain.
    other_root = wire.mint(["read:data:*"])
    elsewhere = ok(wire.delegate(other_root.token, b.agent_id, ["read:data:x"]))["access_token"]

    body = _revoked(wire, "chain", root.agent_id)
    assert body["count"] >= 1
    wire.assert_invalid(to_b)
    wire.assert_invalid(to_c)
    # The root's own token has no chain: chain level targets what was delegated from it.
    assert wire.is_valid(root.token)
    assert wire.is_valid(elsewhere)
    assert wire.is_valid(b.token)
    assert wire.is_valid(c.token)


@pytest.mark.parametrize(
    "body",
    [
        {"level": "galaxy", "target": "x"},
        {"level": "TOKEN", "target": "x"},
        {"level": "token"},
        {"level": "token", "target": ""},
        {"target": "x"},
        {},
        {"level": 1, "target": "x"},
        {"level": "token", "target": ["x"]},
        {"level": None, "target": None},
    ],
)
def test_revoke_bad_input_is_400(wire: Wire, body: dict[str, Any]) -> None:
    assert_problem(wire.post("/v1/revoke", json=body, headers=wire.admin()), 400)


def test_revoke_is_admin_only_and_refusals_change_nothing(wire: Wire) -> None:
    victim = wire.mint(["read:data:x"])
    app = wire.create_app(["read:data:*"])
    body = {"level": "token", "target": victim.jti}
    assert_problem(wire.post("/v1/revoke", json=body), 401, "unauthorized")
    assert_problem(wire.post("/v1/revoke", json=body, headers=bearer(wire.app_token(app))), 403, "insufficient_scope")
    assert_problem(wire.post("/v1/revoke", json=body, headers=bearer(victim.token)), 403, "insufficient_scope")
    # An attacker's home-made admin token: the admin token's own claims, unsigned or HMAC-signed.
    header, payload = jwt_parts(wire.admin_token())
    for forged in (
        forge({**header, "alg": "none"}, payload),
        forge({**header, "alg": "HS256"}, payload, hs256_key=b"secret"),
        forge({**header, "alg": "HS256"}, payload, hs256_key=wire.admin_secret.encode()),
        resign_eddsa(wire.admin_token(), Ed25519PrivateKey.generate()),
    ):
        assert_problem(wire.post("/v1/revoke", json=body, headers=bearer(forged)), 401, "unauthorized")
    assert wire.is_valid(victim.token)


def test_revoked_app_token_is_refused_with_403(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    app_token = ok(wire.app_login(app))["access_token"]
    ok(wire.revoke("token", jwt_parts(app_token)[1]["jti"]))
    resp = wire.launch_token_response(["read:data:x"], auth=bearer(app_token), path="/v1/app/launch-tokens")
    assert_problem(resp, 403, "insufficient_scope")


@pytest.mark.parametrize("level", ["agent", "chain"])
@pytest.mark.parametrize("target", ["admin", "app:app-0123456789abcdef", "orch-1"])
def test_agent_and_chain_levels_refuse_a_target_that_is_not_an_agent(wire: Wire, level: str, target: str) -> None:
    # Revocation rules are permanent; an agent-level rule on "admin" would lock every future admin token out.
    before = wire.audit()["total"]
    assert_problem(wire.revoke(level, target), 400, "invalid_request")
    assert wire.audit()["total"] == before
    assert ok(wire.get("/v1/admin/apps", headers=wire.admin()))["total"] >= 0
