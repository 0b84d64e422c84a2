"""`POST /v1/delegate`: attenuation only, lineage records, chain hash, depth limit."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from ._wire import HEX64, RFC3339, Agent, Wire, assert_problem, bearer, claims_of, ok, unique

HEX128 = re.compile(r"[0-9a-f]{128}")


def chain_hash_candidates(chain: list[dict[str, Any]]) -> set[str]:
    """SHA-256 of "the JSON of the chain" under the serialisations a broker could reasonably mean."""
    texts = {
        json.dumps(chain, separators=(",", ":")),
        json.dumps(chain, separators=(",", ":"), sort_keys=True),
        json.dumps(chain),
        json.dumps(chain, sort_keys=True),
        json.dumps(chain, separators=(",", ":"), ensure_ascii=False),
    }
    return {hashlib.sha256(t.encode()).hexdigest() for t in texts}


def _delegate_ok(wire: Wire, token: str, to: Agent, scope: list[str], **opts: Any) -> dict[str, Any]:
    return dict(ok(wire.delegate(token, to.agent_id, scope, **opts)))


def test_narrowing_delegation(wire: Wire) -> None:
    a = wire.mint(["read:data:*", "write:data:*"], orch_id="orch-a")
    b = wire.mint(["read:other:z"], orch_id="orch-b")
    body = _delegate_ok(wire, a.token, b, ["read:data:x"])
    assert set(body) >= {"access_token", "expires_in", "delegation_chain"}
    assert body["expires_in"] == 60

    claims = claims_of(body["access_token"])
    assert claims["sub"] == b.agent_id
    assert claims["scope"] == ["read:data:x"]
    # task and orchestration stay the delegator's: lineage belongs to the work, not to the delegate.
    assert claims["task_id"] == a.task_id
    assert claims["orch_id"] == "orch-a"
    assert claims["exp"] - claims["iat"] == 60

    chain = claims["delegation_chain"]
    assert chain == body["delegation_chain"]
    assert len(chain) == 1
    record = chain[0]
    assert set(record) == {"agent", "scope", "delegated_at", "signature"}
    assert record["agent"] == a.agent_id
    assert record["scope"] == ["read:data:*", "write:data:*"]
    assert RFC3339.fullmatch(record["delegated_at"]), record
    assert HEX128.fullmatch(record["signature"]), record
    assert HEX64.fullmatch(claims["chain_hash"])
    assert claims["chain_hash"] in chain_hash_candidates(chain)

    validated = wire.validate(body["access_token"])
    assert validated["valid"] is True
    assert validated["claims"]["delegation_chain"] == chain
    assert validated["claims"]["chain_hash"] == claims["chain_hash"]
    # The delegator keeps its own token.
    assert wire.is_valid(a.token)


def test_equal_scope_delegation_is_allowed(wire: Wire) -> None:
    a = wire.mint(["read:data:*", "write:logs:x"])
    b = wire.mint(["read:other:z"])
    body = _delegate_ok(wire, a.token, b, ["write:logs:x", "read:data:*"])
    assert sorted(claims_of(body["access_token"])["scope"]) == ["read:data:*", "write:logs:x"]


@pytest.mark.parametrize(
    "requested",
    [["write:data:x"], ["read:data:*"], ["read:data:x", "read:data:y"], ["read:other:x"], ["read:data:x", "x:y:z"]],
)
def test_widening_delegation_is_a_scope_violation(wire: Wire, requested: list[str]) -> None:
    a = wire.mint(["read:data:x"])
    b = wire.mint(["read:other:z"])
    problem = assert_problem(wire.delegate(a.token, b.agent_id, requested), 403, "scope_violation")
    assert a.token not in problem["detail"]
    assert wire.is_valid(a.token)


def test_delegate_to_unregistered_agent_is_404(wire: Wire) -> None:
    a = wire.mint(["read:data:*"])
    ghost = f"spiffe://agentwrit.local/agent/orch-1/{unique('task')}/0123456789abcdef"
    assert_problem(wire.delegate(a.token, ghost, ["read:data:x"]), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"scope": ["read:data:x"]},
        {"delegate_to": "DELEGATE"},
        {"delegate_to": "DELEGATE", "scope": "read:data:x"},
        {"delegate_to": "DELEGATE", "scope": ["read:data"]},
        {"delegate_to": "DELEGATE", "scope": [1]},
        {"delegate_to": 42, "scope": ["read:data:x"]},
        {"delegate_to": "DELEGATE", "scope": ["read:data:x"], "ttl": "soon"},
        {"delegate_to": "DELEGATE", "scope": ["read:data:x"], "ttl": -10},
    ],
)
def test_delegate_bad_input_is_400(wire: Wire, body: dict[str, Any]) -> None:
    a = wire.mint(["read:data:*"])
    b = wire.mint(["read:other:z"])
    payload = {k: (b.agent_id if v == "DELEGATE" else v) for k, v in body.items()}
    assert_problem(wire.post("/v1/delegate", json=payload, headers=bearer(a.token)), 400)
    assert wire.is_valid(a.token)


def test_delegate_needs_a_bearer_token(wire: Wire) -> None:
    b = wire.mint(["read:other:z"])
    resp = wire.post("/v1/delegate", json={"delegate_to": b.agent_id, "scope": ["read:other:z"]})
    assert_problem(resp, 401, "unauthorized")
    assert_problem(wire.delegate("garbage", b.agent_id, ["read:other:z"]), 401, "unauthorized")


def test_delegation_ttl(wire: Wire) -> None:
    a = wire.mint(["read:data:*"])
    b = wire.mint(["read:other:z"])
    body = _delegate_ok(wire, a.token, b, ["read:data:x"], ttl=30)
    assert body["expires_in"] == 30
    claims = claims_of(body["access_token"])
    assert claims["exp"] - claims["iat"] == 30


def test_chain_of_three_records_each_hop(wire: Wire) -> None:
    a = wire.mint(["read:data:*", "write:data:*"])
    b, c, d = (wire.mint(["read:other:z"]) for _ in range(3))

    to_b = _delegate_ok(wire, a.token, b, ["read:data:*"])
    to_c = _delegate_ok(wire, to_b["access_token"], c, ["read:data:x"])
    to_d = _delegate_ok(wire, to_c["access_token"], d, ["read:data:x"])

    chain = claims_of(to_d["access_token"])["delegation_chain"]
    assert [r["agent"] for r in chain] == [a.agent_id, b.agent_id, c.agent_id]
    assert [r["scope"] for r in chain] == [["read:data:*", "write:data:*"], ["read:data:*"], ["read:data:x"]]
    assert to_d["delegation_chain"] == chain
    # Each hop extends the previous chain unchanged.
    assert chain[:1] == to_b["delegation_chain"]
    assert chain[:2] == to_c["delegation_chain"]

    hashes = [claims_of(t["access_token"])["chain_hash"] for t in (to_b, to_c, to_d)]
    assert all(HEX64.fullmatch(h) for h in hashes)
    assert len(set(hashes)) == 3
    for token_body in (to_b, to_c, to_d):
        claims = claims_of(token_body["access_token"])
        assert claims["chain_hash"] in chain_hash_candidates(claims["delegation_chain"])
        assert claims["task_id"] == a.task_id

    final = wire.validate(to_d["access_token"])
    assert final["valid"] is True
    assert final["claims"]["sub"] == d.agent_id
    assert final["claims"]["scope"] == ["read:data:x"]

    # Widening is refused at any depth, against the holder's scope (not the root's).
    assert_problem(wire.delegate(to_c["access_token"], d.agent_id, ["read:data:*"]), 403, "scope_violation")


def test_depth_limit_is_five_records(wire: Wire) -> None:
    root = wire.mint(["read:data:*"])
    hops = [wire.mint(["read:other:z"]) for _ in range(6)]
    token = root.token
    for depth, hop in enumerate(hops[:5], start=1):
        body = _delegate_ok(wire, token, hop, ["read:data:x"])
        token = body["access_token"]
        assert len(claims_of(token)["delegation_chain"]) == depth
    # The holder's chain already has 5 records: no sixth hop.
    assert_problem(wire.delegate(token, hops[5].agent_id, ["read:data:x"]), 403, "scope_violation")
    assert wire.is_valid(token)


def test_renewing_a_delegated_token_keeps_its_chain(wire: Wire) -> None:
    a = wire.mint(["read:data:*"])
    b = wire.mint(["read:other:z"])
    delegated = _delegate_ok(wire, a.token, b, ["read:data:x"], ttl=40)
    before = claims_of(delegated["access_token"])
    renewed = ok(wire.renew(delegated["access_token"]))
    after = claims_of(renewed["access_token"])
    assert renewed["expires_in"] == 40
    assert after["sub"] == b.agent_id
    assert after["scope"] == ["read:data:x"]
    assert after["delegation_chain"] == before["delegation_chain"]
    assert after["chain_hash"] == before["chain_hash"]
    assert after["jti"] != before["jti"]
    wire.assert_invalid(delegated["access_token"])


def test_only_agent_tokens_delegate(wire: Wire) -> None:
    """Admin and app authority never ends up inside an agent token: role separation holds through delegation."""
    agent = wire.mint(["read:data:x"])
    app = wire.create_app(["read:data:*"])
    for token, scope in ((wire.admin_token(), ["admin:revoke:*"]), (wire.app_token(app), ["app:launch-tokens:*"])):
        assert_problem(wire.delegate(token, agent.agent_id, scope), 403)
