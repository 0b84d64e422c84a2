"""Launch tokens (admin and app routes), the challenge, and registration with an Ed25519 proof of possession."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._wire import (
    HEX32,
    HEX64,
    RFC3339,
    SPIFFE_AGENT,
    Wire,
    assert_problem,
    b64,
    bearer,
    claims_of,
    ok,
    parse_time,
    unique,
)
from .conftest import StartBroker


def _epoch(rfc3339: str) -> float:
    return parse_time(rfc3339).timestamp()


# --- launch tokens ----------------------------------------------------------------------------------------------


def test_admin_launch_token_defaults(wire: Wire) -> None:
    before = time.time()
    resp = wire.launch_token_response(["read:data:*"])
    body = ok(resp, 201)
    assert HEX64.fullmatch(body["launch_token"])
    assert RFC3339.fullmatch(body["expires_at"]), body
    assert before + 30 - 3 <= _epoch(body["expires_at"]) <= time.time() + 30 + 3
    assert body["policy"]["allowed_scope"] == ["read:data:*"]
    assert body["policy"]["max_ttl"] == 300


def test_admin_launch_token_options(wire: Wire) -> None:
    before = time.time()
    body = ok(wire.launch_token_response(["read:data:*"], ttl=120, max_ttl=60, single_use=False), 201)
    assert before + 120 - 3 <= _epoch(body["expires_at"]) <= time.time() + 120 + 3
    assert body["policy"]["max_ttl"] == 60
    agent = wire.mint(["read:data:x"], launch_token=body["launch_token"])
    assert agent.expires_in == 60
    assert agent.claims["exp"] - agent.claims["iat"] == 60


@pytest.mark.parametrize(
    "body",
    [
        {"agent_name": "", "allowed_scope": ["read:data:*"]},
        {"agent_name": "a", "allowed_scope": []},
        {"allowed_scope": ["read:data:*"]},
        {"agent_name": "a"},
        {"agent_name": "a", "allowed_scope": ["read:data"]},
        {"agent_name": "a", "allowed_scope": ["read:data:x*"]},
        {"agent_name": "a", "allowed_scope": "read:data:*"},
        {"agent_name": 3, "allowed_scope": ["read:data:*"]},
        {"agent_name": "a", "allowed_scope": [1, 2]},
        {"agent_name": "a", "allowed_scope": ["read:data:*"], "max_ttl": "long"},
        {"agent_name": "a", "allowed_scope": ["read:data:*"], "single_use": "sometimes"},
        {"agent_name": "a", "allowed_scope": ["read:data:*"], "ttl": []},
    ],
)
def test_launch_token_bad_input_is_400(wire: Wire, body: dict[str, Any]) -> None:
    resp = wire.post("/v1/admin/launch-tokens", json=body, headers=wire.admin())
    assert_problem(resp, 400)


def test_app_launch_token_within_ceiling(wire: Wire) -> None:
    app = wire.create_app(["read:data:*", "write:logs:*"])
    auth = bearer(wire.app_token(app))
    body = ok(wire.launch_token_response(["read:data:x"], auth=auth, path="/v1/app/launch-tokens"), 201)
    assert HEX64.fullmatch(body["launch_token"])
    assert body["policy"]["allowed_scope"] == ["read:data:x"]
    agent = wire.mint(["read:data:x"], launch_token=body["launch_token"])
    assert agent.claims["scope"] == ["read:data:x"]
    # Equal to the ceiling is fine too.
    lt = wire.launch_token_response(["read:data:*", "write:logs:*"], auth=auth, path="/v1/app/launch-tokens")
    assert lt.status_code == 201, lt.text


@pytest.mark.parametrize(
    "requested",
    [["write:data:x"], ["read:data:*", "delete:data:x"], ["read:other:x"]],
)
def test_app_launch_token_over_ceiling_is_forbidden_naming_the_ceiling(wire: Wire, requested: list[str]) -> None:
    ceiling = ["read:data:*", "write:logs:y"]
    app = wire.create_app(ceiling)
    resp = wire.launch_token_response(requested, auth=bearer(wire.app_token(app)), path="/v1/app/launch-tokens")
    problem = assert_problem(resp, 403, "forbidden")
    for scope in ceiling:
        assert scope in problem["detail"], problem


def test_app_launch_token_wildcard_over_specific_ceiling_is_forbidden(wire: Wire) -> None:
    app = wire.create_app(["read:data:x"])
    resp = wire.launch_token_response(["read:data:*"], auth=bearer(wire.app_token(app)), path="/v1/app/launch-tokens")
    assert_problem(resp, 403, "forbidden")


def test_launch_token_routes_are_role_separated(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    app_auth = bearer(wire.app_token(app))
    admin_on_app_route = wire.launch_token_response(["read:data:x"], auth=wire.admin(), path="/v1/app/launch-tokens")
    assert_problem(admin_on_app_route, 403, "insufficient_scope")
    app_on_admin_route = wire.launch_token_response(["read:data:x"], auth=app_auth, path="/v1/admin/launch-tokens")
    assert_problem(app_on_admin_route, 403, "insufficient_scope")
    agent = wire.mint(["read:data:x"])
    for path in ("/v1/admin/launch-tokens", "/v1/app/launch-tokens"):
        resp = wire.launch_token_response(["read:data:x"], auth=bearer(agent.token), path=path)
        assert_problem(resp, 403, "insufficient_scope")
        no_auth = wire.post(path, json={"agent_name": "a", "allowed_scope": ["read:data:x"]})
        assert_problem(no_auth, 401, "unauthorized")


# --- challenge --------------------------------------------------------------------------------------------------


def test_challenge_gives_fresh_64_hex_nonces(wire: Wire) -> None:
    seen = set()
    for _ in range(5):
        body = ok(wire.get("/v1/challenge"))
        assert HEX64.fullmatch(body["nonce"])
        assert body["expires_in"] == 30
        seen.add(body["nonce"])
    assert len(seen) == 5


# --- registration: success --------------------------------------------------------------------------------------


def test_register_issues_agent_identity_and_token(wire: Wire) -> None:
    task = unique("task")
    lt = wire.launch_token(["read:data:*", "write:data:*"])
    key = Ed25519PrivateKey.generate()
    body = ok(wire.register(wire.register_body(lt, ["read:data:x"], key=key, orch_id="orch-7", task_id=task)))
    match = SPIFFE_AGENT.fullmatch(body["agent_id"])
    assert match, body["agent_id"]
    assert match["td"] == "agentwrit.local"
    assert match["orch"] == "orch-7"
    assert match["task"] == task
    assert body["expires_in"] == 300

    claims = claims_of(body["access_token"])
    assert claims["sub"] == body["agent_id"]
    assert claims["scope"] == ["read:data:x"]
    assert claims["task_id"] == task
    assert claims["orch_id"] == "orch-7"
    assert claims["exp"] - claims["iat"] == 300
    assert HEX32.fullmatch(claims["jti"])
    assert "delegation_chain" not in claims or not claims["delegation_chain"]
    assert wire.is_valid(body["access_token"])


def test_each_registration_gets_a_new_instance(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"], single_use=False)
    ids = {wire.mint(["read:data:x"], launch_token=lt, task_id="same-task").agent_id for _ in range(3)}
    assert len(ids) == 3


def test_multi_use_launch_token_can_be_reused(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"], single_use=False)
    for _ in range(3):
        resp = wire.register(wire.register_body(lt, ["read:data:x"]))
        assert resp.status_code == 200, resp.text


# --- registration: refusals -------------------------------------------------------------------------------------


def test_single_use_launch_token_cannot_be_reused(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"])
    ok(wire.register(wire.register_body(lt, ["read:data:x"])))
    assert_problem(wire.register(wire.register_body(lt, ["read:data:x"])), 401)


def test_scope_violation_is_checked_before_the_launch_token_is_consumed(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:x"])
    for requested in (["write:data:x"], ["read:data:*"], ["read:data:x", "read:data:y"]):
        assert_problem(wire.register(wire.register_body(lt, requested)), 403, "scope_violation")
    # The same single-use launch token still works with a scope it allows.
    resp = wire.register(wire.register_body(lt, ["read:data:x"]))
    assert resp.status_code == 200, resp.text


def test_expired_launch_token_is_refused(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"], ttl=1)
    body = wire.register_body(lt, ["read:data:x"])
    time.sleep(2.2)
    assert_problem(wire.register(body), 401)


def test_unknown_launch_token_is_refused(wire: Wire) -> None:
    guess = secrets.token_hex(32)
    resp = wire.register(wire.register_body(guess, ["read:data:x"]))
    assert_problem(resp, 401)
    assert guess not in resp.text


def test_nonce_is_single_use(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"], single_use=False)
    nonce = wire.nonce()
    ok(wire.register(wire.register_body(lt, ["read:data:x"], nonce=nonce)))
    assert_problem(wire.register(wire.register_body(lt, ["read:data:x"], nonce=nonce)), 401)


def test_unknown_nonce_is_refused(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"])
    assert_problem(wire.register(wire.register_body(lt, ["read:data:x"], nonce=secrets.token_hex(32))), 401)


def test_signature_must_be_over_the_nonce_bytes_by_the_presented_key(wire: Wire) -> None:
    lt = wire.launch_token(["read:data:*"], single_use=False)
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    by_other_key = wire.register_body(lt, ["read:data:x"], key=key)
    by_other_key["signature"] = b64(other.sign(bytes.fromhex(by_other_key["nonce"])))
    assert_problem(wire.register(by_other_key), 401)

    over_hex_text = wire.register_body(lt, ["read:data:x"], key=key)
    over_hex_text["signature"] = b64(key.sign(over_hex_text["nonce"].encode()))
    assert_problem(wire.register(over_hex_text), 401)

    flipped = wire.register_body(lt, ["read:data:x"], key=key)
    sig = bytearray(key.sign(bytes.fromhex(flipped["nonce"])))
    sig[0] ^= 0x01
    flipped["signature"] = b64(bytes(sig))
    assert_problem(wire.register(flipped), 401)

    # The launch token was multi-use and the refusals did not spoil it.
    assert wire.register(wire.register_body(lt, ["read:data:x"], key=key)).status_code == 200


@pytest.mark.parametrize(
    ("field_name", "value", "status"),
    [
        # A key or signature that is there but wrong is a failed proof (401); an empty one is a missing field (400).
        ("public_key", "not base64 at all!!", 401),
        ("public_key", b64(b"\x01" * 31), 401),
        ("public_key", b64(b"\x01" * 33), 401),
        ("public_key", "AAAA====", 401),
        ("public_key", "", 400),
        ("signature", "%%%", 401),
        ("signature", b64(b"\x00" * 63), 401),
        ("signature", b64(b"\x00" * 64), 401),
        ("signature", "", 400),
    ],
)
def test_malformed_key_or_signature_is_refused(wire: Wire, field_name: str, value: str, status: int) -> None:
    lt = wire.launch_token(["read:data:*"])
    body = wire.register_body(lt, ["read:data:x"])
    body[field_name] = value
    assert_problem(wire.register(body), status)


@pytest.mark.parametrize(
    "missing", ["launch_token", "nonce", "public_key", "signature", "orch_id", "task_id", "requested_scope"]
)
def test_register_missing_field_is_400(wire: Wire, missing: str) -> None:
    lt = wire.launch_token(["read:data:*"])
    body = wire.register_body(lt, ["read:data:x"])
    del body[missing]
    assert_problem(wire.register(body), 400)
    # A malformed request does not consume the launch token.
    assert wire.register(wire.register_body(lt, ["read:data:x"])).status_code == 200


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("requested_scope", "read:data:x"),
        ("requested_scope", [1]),
        ("requested_scope", ["read:data"]),
        ("requested_scope", ["read:data:x*"]),
        ("orch_id", 5),
        ("task_id", {"a": 1}),
        ("launch_token", 123),
        ("nonce", ["x"]),
        ("public_key", 7),
        ("signature", None),
    ],
)
def test_register_wrong_types_and_bad_scope_format_are_400(wire: Wire, field_name: str, value: object) -> None:
    lt = wire.launch_token(["read:data:*"])
    body = wire.register_body(lt, ["read:data:x"])
    body[field_name] = value
    assert_problem(wire.register(body), 400)
    assert wire.register(wire.register_body(lt, ["read:data:x"])).status_code == 200


def test_agent_token_lifetime_follows_launch_token_max_ttl(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"], max_ttl=45)
    assert agent.expires_in == 45
    assert agent.claims["exp"] - agent.claims["iat"] == 45


def test_expired_nonce_is_refused(start_broker: StartBroker) -> None:
    from agentwrit_tools.broker import BrokerSettings

    with start_broker(settings=BrokerSettings(nonce_ttl=1)) as w:
        lt = w.launch_token(["read:data:*"], single_use=False)
        stale = w.register_body(lt, ["read:data:x"])
        time.sleep(2.2)
        assert_problem(w.register(stale), 401)
        # A fresh nonce works with the same launch token.
        assert w.register(w.register_body(lt, ["read:data:x"])).status_code == 200
