"""Validate, renew and release; forged, expired and garbage tokens on every token path.

The token paths are generic on purpose: validate always answers `token is invalid or expired`, renew always
answers `token renewal failed`, whatever the reason. Bad input never changes state: a forged copy of a real token
cannot release, renew or delegate it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._wire import (
    HEX32,
    RENEW_FAILED,
    Agent,
    Wire,
    assert_problem,
    bearer,
    claims_of,
    forge,
    jwt_parts,
    ok,
    resign_eddsa,
    unique,
)


def _forgeries(agent: Agent) -> dict[str, str]:
    """Tokens an attacker could build from a real one: same claims, not the broker's signature."""
    header, payload = jwt_parts(agent.token)
    head, body, sig = agent.token.split(".")
    widened = forge(header, {**payload, "scope": ["read:data:*"]}).split(".")[1]
    pub = agent.key.public_key().public_bytes_raw()
    return {
        "alg-none": forge({**header, "alg": "none"}, payload),
        "alg-None": forge({"alg": "None", "typ": "JWT"}, payload),
        "hs256-with-public-key": forge({**header, "alg": "HS256"}, payload, hs256_key=pub),
        "hs256-with-kid": forge({**header, "alg": "HS256"}, payload, hs256_key=str(header.get("kid")).encode()),
        "hs256-empty-key": forge({"alg": "HS256", "typ": "JWT"}, payload, hs256_key=b""),
        "eddsa-other-key": resign_eddsa(agent.token, Ed25519PrivateKey.generate()),
        "widened-payload-old-signature": f"{head}.{widened}.{sig}",
        "signature-stripped": f"{head}.{body}.",
        "two-parts": f"{head}.{body}",
    }


GARBAGE = ["garbage", "a.b.c", "...", "e30.e30.e30", "x" * 5000, "Bearer x", "\u00e9\u00e9.\u00e9.\u00e9"]


# --- validate ---------------------------------------------------------------------------------------------------


def test_validate_returns_claims_of_a_live_token(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"], orch_id="orch-v", max_ttl=120)
    body = wire.validate(agent.token)
    assert body["valid"] is True
    claims = body["claims"]
    assert claims["sub"] == agent.agent_id
    assert claims["scope"] == ["read:data:x"]
    assert claims["task_id"] == agent.task_id
    assert claims["orch_id"] == "orch-v"
    assert claims["jti"] == agent.jti
    assert HEX32.fullmatch(claims["jti"])
    assert claims["exp"] - claims["iat"] == 120
    assert isinstance(claims["nbf"], int)
    assert isinstance(claims["iss"], str)
    assert "aud" not in claims or isinstance(claims["aud"], list)


@pytest.mark.parametrize("token", GARBAGE)
def test_validate_garbage_is_200_invalid_with_the_generic_message(wire: Wire, token: str) -> None:
    wire.assert_invalid(token)


def test_validate_forgeries_are_invalid_and_leave_the_real_token_alone(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"], allowed=["read:data:*"])
    for forged in _forgeries(agent).values():
        wire.assert_invalid(forged)
    assert wire.is_valid(agent.token)


@pytest.mark.parametrize("body", [{}, {"token": None}, {"token": 123}, {"token": ["a"]}, {"tok": "x"}])
def test_validate_missing_or_mistyped_token_is_400(wire: Wire, body: dict[str, Any]) -> None:
    assert_problem(wire.post("/v1/token/validate", json=body), 400)


def test_validate_needs_no_authentication(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"])
    resp = wire.post("/v1/token/validate", json={"token": agent.token}, headers=bearer("nonsense"))
    assert ok(resp)["valid"] is True


# --- renew ------------------------------------------------------------------------------------------------------


def test_renew_issues_same_authority_under_a_fresh_jti_and_kills_the_old(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"], max_ttl=120)
    old = agent.claims
    time.sleep(1.05)  # so a fresh iat is observable
    body = ok(wire.renew(agent.token))
    assert set(body) >= {"access_token", "expires_in"}
    assert body["expires_in"] == 120
    new = claims_of(body["access_token"])
    assert new["sub"] == old["sub"]
    assert new["scope"] == old["scope"]
    assert new["task_id"] == old["task_id"]
    assert new["orch_id"] == old["orch_id"]
    assert new["jti"] != old["jti"]
    assert new["iat"] > old["iat"]
    assert new["exp"] - new["iat"] == 120
    assert new["exp"] > old["exp"]

    assert wire.is_valid(body["access_token"])
    wire.assert_invalid(agent.token)
    # The predecessor is revoked: renewing it again fails, generically.
    assert_problem(wire.renew(agent.token), 401, "unauthorized", detail=RENEW_FAILED)
    assert wire.is_valid(body["access_token"])


def test_renew_refuses_forged_and_garbage_tokens_generically_without_touching_the_real_one(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"], allowed=["read:data:*"])
    for name, forged in _forgeries(agent).items():
        resp = wire.renew(forged)
        assert resp.status_code == 401, (name, resp.text)
        assert forged not in resp.text
        assert agent.token not in resp.text
        assert_problem(resp, 401, "unauthorized", detail=RENEW_FAILED)
    for token in GARBAGE[:4]:
        assert_problem(wire.renew(token), 401, "unauthorized", detail=RENEW_FAILED)
    assert wire.is_valid(agent.token)
    assert ok(wire.renew(agent.token))["access_token"]


def test_renew_without_bearer_is_401(wire: Wire) -> None:
    assert_problem(wire.post("/v1/token/renew"), 401, "unauthorized")
    assert_problem(wire.post("/v1/token/renew", headers={"Authorization": "Token abc"}), 401, "unauthorized")
    assert_problem(wire.post("/v1/token/renew", headers={"Authorization": "Bearer"}), 401, "unauthorized")
    assert_problem(wire.post("/v1/token/renew", headers={"Authorization": ""}), 401, "unauthorized")


def test_renew_of_a_revoked_token_is_the_same_generic_401(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"])
    ok(wire.revoke("token", agent.jti))
    assert_problem(wire.renew(agent.token), 401, "unauthorized", detail=RENEW_FAILED)


# --- release ----------------------------------------------------------------------------------------------------


def test_release_is_204_then_the_token_is_dead(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"])
    resp = wire.release(agent.token)
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    wire.assert_invalid(agent.token)
    assert_problem(wire.release(agent.token), 403, "insufficient_scope")
    assert_problem(wire.renew(agent.token), 401, "unauthorized", detail=RENEW_FAILED)


def test_release_refuses_forgeries_and_the_real_token_lives_on(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"], allowed=["read:data:*"])
    for name, forged in _forgeries(agent).items():
        resp = wire.release(forged)
        assert resp.status_code == 401, (name, resp.text)
        assert forged not in resp.text
        assert_problem(resp, 401, "unauthorized")
    assert_problem(wire.release("garbage"), 401, "unauthorized")
    assert_problem(wire.post("/v1/token/release"), 401, "unauthorized")
    assert wire.is_valid(agent.token)
    assert wire.release(agent.token).status_code == 204


def test_released_token_cannot_delegate(wire: Wire) -> None:
    agent = wire.mint(["read:data:*"])
    other = wire.mint(["read:data:y"])
    assert wire.release(agent.token).status_code == 204
    assert_problem(wire.delegate(agent.token, other.agent_id, ["read:data:x"]), 403, "insufficient_scope")


# --- expiry -----------------------------------------------------------------------------------------------------


def test_expired_token_fails_every_token_path_generically(wire: Wire) -> None:
    agent = wire.mint(["read:data:*"], max_ttl=1)
    other = wire.mint(["read:data:y"])
    assert agent.claims["exp"] - agent.claims["iat"] == 1
    time.sleep(2.2)
    wire.assert_invalid(agent.token)
    assert_problem(wire.renew(agent.token), 401, "unauthorized", detail=RENEW_FAILED)
    assert_problem(wire.release(agent.token), 401, "unauthorized")
    assert_problem(wire.delegate(agent.token, other.agent_id, ["read:data:x"]), 401, "unauthorized")


# --- global max TTL ---------------------------------------------------------------------------------------------


def test_global_max_ttl_caps_every_issued_token(wire: Wire) -> None:
    resp = wire.launch_token_response(["read:data:*"], max_ttl=100_000)
    if resp.status_code != 201:  # refusing the over-long request is as good as capping it
        assert_problem(resp, 400)
        return
    agent = wire.mint(["read:data:x"], launch_token=resp.json()["launch_token"])
    assert agent.expires_in <= 86_400
    assert agent.claims["exp"] - agent.claims["iat"] <= 86_400
    renewed = ok(wire.renew(agent.token))
    assert renewed["expires_in"] <= 86_400
    other = wire.mint(["read:other:z"])
    delegated = wire.delegate(renewed["access_token"], other.agent_id, ["read:data:x"], ttl=100_000)
    if delegated.status_code == 200:
        claims = claims_of(delegated.json()["access_token"])
        assert claims["exp"] - claims["iat"] <= 86_400
    else:
        assert_problem(delegated, 400)


def test_app_token_ttl_over_the_global_max_is_refused_or_capped(wire: Wire) -> None:
    name = unique("app")
    resp = wire.post(
        "/v1/admin/apps", json={"name": name, "scopes": ["read:data:*"], "token_ttl": 100_000}, headers=wire.admin()
    )
    if resp.status_code == 200:
        assert resp.json()["token_ttl"] <= 86_400
    else:
        assert_problem(resp, 400, "invalid_ttl")
