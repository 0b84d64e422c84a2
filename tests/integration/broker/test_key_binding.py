"""Extension: key-bound tokens — ``cnf.jkt`` names the key the agent proved at registration, on the raw wire.

Registration with ``"key_bound": true`` binds the token to the registered key (RFC 7638 thumbprint, computed here
independently of the broker); renewal keeps the binding; a token delegated from a bound token is bound to the
*delegate's* key; the flag is strictly a boolean; without it, and with the extensions off, tokens are plain bearer
tokens (the reference contract, which the official client speaks, is unchanged).
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._wire import Agent, Wire, assert_problem, b64url, claims_of, ok, thumbprint_candidates, unique
from .conftest import StartBroker


def _jkt(key: Ed25519PrivateKey) -> str:
    """The thumbprint the contract's test helper computes (not the library's), base64url."""
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64url(key.public_key().public_bytes_raw())}
    return next(t for t in thumbprint_candidates(jwk) if len(t) == 43)


def _register(wire: Wire, scope: list[str], **extra: Any) -> tuple[dict[str, Any], Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    body = {**wire.register_body(wire.launch_token(scope), scope, key=key, task_id=unique("kb")), **extra}
    return dict(ok(wire.register(body))), key


def test_a_registration_asking_for_it_gets_a_token_bound_to_its_key(wire: Wire) -> None:
    data, key = _register(wire, ["read:data:x"], key_bound=True)
    claims = claims_of(data["access_token"])
    assert claims["cnf"] == {"jkt": _jkt(key)}
    validated = wire.validate(data["access_token"])
    assert validated["valid"]
    assert validated["claims"]["cnf"] == {"jkt": _jkt(key)}


@pytest.mark.parametrize("extra", [{}, {"key_bound": False}, {"key_bound": None}])
def test_without_the_flag_the_token_is_a_bearer_token(wire: Wire, extra: dict[str, Any]) -> None:
    data, _ = _register(wire, ["read:data:x"], **extra)
    assert "cnf" not in claims_of(data["access_token"])


@pytest.mark.parametrize("value", ["true", 1, [], {"x": 1}])
def test_the_flag_must_be_a_boolean(wire: Wire, value: Any) -> None:
    scope = ["read:data:x"]
    launch = wire.launch_token(scope)
    body = {**wire.register_body(launch, scope, task_id=unique("kb")), "key_bound": value}
    assert_problem(wire.register(body), 400, "invalid_request")
    # Nothing was consumed: the same launch token still registers.
    ok(wire.register(wire.register_body(launch, scope, task_id=unique("kb"))))


def test_renewal_keeps_the_binding(wire: Wire) -> None:
    data, key = _register(wire, ["read:data:x"], key_bound=True)
    renewed = ok(wire.renew(data["access_token"]))["access_token"]
    assert claims_of(renewed)["cnf"] == {"jkt": _jkt(key)}
    assert claims_of(renewed)["jti"] != claims_of(data["access_token"])["jti"]


def test_a_token_delegated_from_a_bound_one_is_bound_to_the_delegates_key(wire: Wire) -> None:
    data, delegator_key = _register(wire, ["read:data:*"], key_bound=True)
    delegate: Agent = wire.mint(["read:other:z"])  # registered without the flag: its key is on record anyway
    granted = ok(wire.delegate(data["access_token"], delegate.agent_id, ["read:data:y"]))
    cnf = claims_of(granted["access_token"])["cnf"]
    assert cnf == {"jkt": _jkt(delegate.key)}
    assert cnf["jkt"] != _jkt(delegator_key)
    # And onwards: a token delegated from that one is bound to the next delegate's key.
    third = wire.mint(["read:other:z"])
    onwards = ok(wire.delegate(granted["access_token"], third.agent_id, ["read:data:y"]))["access_token"]
    assert claims_of(onwards)["cnf"] == {"jkt": _jkt(third.key)}


def test_an_unbound_delegator_may_ask_for_a_bound_delegated_token(wire: Wire) -> None:
    delegator = wire.mint(["read:data:*"])
    delegate = wire.mint(["read:other:z"])
    plain = ok(wire.delegate(delegator.token, delegate.agent_id, ["read:data:y"]))["access_token"]
    assert "cnf" not in claims_of(plain)
    asked = ok(wire.delegate(delegator.token, delegate.agent_id, ["read:data:y"], key_bound=True))["access_token"]
    assert claims_of(asked)["cnf"] == {"jkt": _jkt(delegate.key)}
    assert_problem(wire.delegate(delegator.token, delegate.agent_id, ["read:data:y"], key_bound="yes"), 400)


def test_with_the_extensions_off_the_flag_is_ignored(start_broker: StartBroker) -> None:
    with start_broker(extensions=False) as wire:
        data, _ = _register(wire, ["read:data:x"], key_bound=True)
        assert "cnf" not in claims_of(data["access_token"])
        delegate = wire.mint(["read:other:z"])
        granted = ok(wire.delegate(data["access_token"], delegate.agent_id, ["read:data:x"], key_bound=True))
        assert "cnf" not in claims_of(granted["access_token"])


def test_the_binding_survives_a_restart(start_broker: StartBroker) -> None:
    with start_broker() as wire:
        data, key = _register(wire, ["read:data:x"], key_bound=True)
    with start_broker() as wire:  # same database file
        renewed = ok(wire.renew(data["access_token"]))["access_token"]
        assert claims_of(renewed)["cnf"] == {"jkt": _jkt(key)}
