"""Advisory 6: token strictness.

A signature re-encoded with different trailing base64url bits validated (a second token string for one ``jti``);
``iat`` in the future and a lifetime beyond the max TTL were not checked; a registration with 200 scopes produced a
29 KB token, over the 16 KiB limit both sides enforce. Non-canonical encodings and out-of-range times are refused
on validate, on every Bearer endpoint and by the client's local verification; a request whose token would be too
long is refused before anything is consumed.
"""

from __future__ import annotations

import time

import pytest
from security_support import (
    BEARER_ENDPOINTS,
    Genuine,
    Wire,
    assert_problem,
    bearer,
    counted,
    jwt_parts,
    refused,
    served,
)
from security_support import sign_eddsa as _sign

from agentwrit_tools import TokenInvalid, Verifier

_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MAX_TTL = 86400  # the broker under attack keeps the default global max TTL


def respelled(token: str) -> str:
    """The same signature bytes, spelled with different unused bits in the last base64url character."""
    head, body, sig = token.split(".")
    last = _B64URL.index(sig[-1])
    # 64 bytes = 512 bits in 86 characters (516 bits): the last character's low 4 bits are padding.
    other = _B64URL[(last & ~0xF) | ((last & 0xF) ^ 0x1)]
    return f"{head}.{body}.{sig[:-1]}{other}"


def _everywhere_refused(wire: Wire, local: Verifier, forged: list[str]) -> None:
    for token in forged:
        wire.assert_invalid(token)
        counted("tokens", "refused")
        for method, path, body in BEARER_ENDPOINTS:
            resp = wire.client.request(method, path, json=body, headers=bearer(token))
            refused("tokens", resp, 401, "unauthorized")
        with pytest.raises(TokenInvalid):
            local.verify(token)
        counted("tokens", "refused")


def test_a_respelled_signature_is_a_different_and_invalid_token(
    wire: Wire, genuine: Genuine, local_verifier: Verifier
) -> None:
    forged = [respelled(token) for token in (genuine.agent, genuine.admin, genuine.delegated)]
    assert all(f != t for f, t in zip(forged, (genuine.agent, genuine.admin, genuine.delegated), strict=True))
    _everywhere_refused(wire, local_verifier, forged)
    assert wire.is_valid(genuine.agent)
    assert local_verifier.verify(genuine.agent).jti == jwt_parts(genuine.agent)[1]["jti"]
    counted("tokens", "served")


def test_iat_in_the_future_is_refused(wire: Wire, genuine: Genuine, local_verifier: Verifier) -> None:
    """A sibling with a fast clock (or a pre-dated mint): ``nbf`` now, ``iat`` ten minutes ahead."""
    header, payload = jwt_parts(genuine.agent)
    now = int(time.time())
    forged = _sign(header, {**payload, "iat": now + 600, "nbf": now - 1}, genuine.broker_key)
    _everywhere_refused(wire, local_verifier, [forged])
    assert wire.is_valid(genuine.agent)
    counted("tokens", "served")


def test_a_lifetime_beyond_the_max_ttl_is_refused(wire: Wire, genuine: Genuine, local_verifier: Verifier) -> None:
    header, payload = jwt_parts(genuine.agent)
    now = int(time.time())
    forged = _sign(header, {**payload, "iat": now - 10, "nbf": now - 10, "exp": now + MAX_TTL}, genuine.broker_key)
    _everywhere_refused(wire, local_verifier, [forged])
    within = _sign(header, {**payload, "iat": now - 10, "nbf": now - 10, "exp": now + 600}, genuine.broker_key)
    assert wire.is_valid(within)  # the same key and claims within the max TTL: the lifetime alone decided
    counted("tokens", "served")


def _many_scopes(n: int) -> list[str]:
    return [f"read:records:{'P' * 100}-{i:04d}" for i in range(n)]


def test_a_registration_whose_token_would_pass_16_kib_is_refused_before_anything_is_consumed(wire: Wire) -> None:
    launch = wire.launch_token(["read:records:*"])
    nonce = wire.nonce()
    body = wire.register_body(launch, _many_scopes(200), nonce=nonce)
    problem = refused("tokens", wire.register(body), 400, "invalid_request")
    assert "16384" in problem["detail"]
    # Neither the single-use launch token nor the nonce was consumed.
    agent = served("tokens", wire.register(wire.register_body(launch, _many_scopes(20), nonce=nonce)))
    assert len(agent["access_token"]) <= 16 * 1024


def test_a_delegation_whose_token_would_pass_16_kib_is_refused(wire: Wire) -> None:
    holder = wire.mint(["read:records:*"])
    helper = wire.mint(["read:records:P-2"])
    assert_problem(wire.delegate(holder.token, helper.agent_id, _many_scopes(200)), 400, "invalid_request")
    counted("tokens", "refused")
    served("tokens", wire.delegate(holder.token, helper.agent_id, _many_scopes(20)))
