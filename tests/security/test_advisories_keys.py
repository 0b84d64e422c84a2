"""Advisory 1: registration without a private key.

OpenSSL's Ed25519 verification does not refuse small-order public keys, and for the neutral point ``01 00…00`` the
"universal" signature ``R = 01 00…00, S = 0`` verifies for every message: a challenge-response proves nothing for
such a key. Every key the project accepts goes through :mod:`agentwrit_tools.ed25519`; here, registration (the
attack) and the client's JWKS (a broker that publishes such a key), each followed by the legitimate request.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from security_support import Genuine, Wire, b64url, counted, refused, serve_asgi, served

from agentwrit_tools import TokenInvalid, Verifier
from agentwrit_tools.ed25519 import public_key_problem

P = 2**255 - 19

SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # neutral point (order 1)
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = -1 (order 2)
    "0000000000000000000000000000000000000000000000000000000000000000",  # y = 0, x = +sqrt(-1) (order 4)
    "0000000000000000000000000000000000000000000000000000000000000080",  # y = 0, x = -sqrt(-1) (order 4)
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
]
"""The eight points of order dividing 8, as their canonical 32-byte encodings."""


def _encode(y: int, sign: int = 0) -> str:
    return (y | (sign << 255)).to_bytes(32, "little").hex()


NON_CANONICAL = [
    _encode(P),  # y = p, i.e. 0 spelled a second way
    _encode(P + 1),  # y = p + 1, i.e. the neutral point spelled a second way
    _encode(2**255 - 1),  # y = 2^255 - 1 >= p
    _encode(1, sign=1),  # x = 0 with the sign bit set
    _encode(P - 1, sign=1),
]

IDENTITY = bytes.fromhex(SMALL_ORDER[0])
UNIVERSAL_SIGNATURE = IDENTITY + bytes(32)  # R = the neutral point, S = 0


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _forged_body(wire: Wire, launch: str, public_key: bytes, signature: bytes) -> dict[str, Any]:
    body = wire.register_body(launch, ["read:records:P-1"])
    return {**body, "public_key": _b64(public_key), "signature": _b64(signature)}


def test_identity_key_with_the_universal_signature_cannot_register(wire: Wire) -> None:
    launch = wire.launch_token(["read:records:*"], single_use=True)
    body = _forged_body(wire, launch, IDENTITY, UNIVERSAL_SIGNATURE)
    # The forgery is real: the bare library accepts this signature over this very nonce, with no private key.
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(UNIVERSAL_SIGNATURE, bytes.fromhex(body["nonce"]))
    refused("keys", wire.register(body), 401, "unauthorized", detail_contains="small order")
    # Refused before anything was consumed: the same launch token registers a genuine key.
    agent = served("keys", wire.register(wire.register_body(launch, ["read:records:P-1"])))
    assert agent["agent_id"].startswith("spiffe://")


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [(e, "small order") for e in SMALL_ORDER] + [(e, "not canonically encoded") for e in NON_CANONICAL],
)
def test_every_small_order_or_non_canonical_key_is_refused_at_registration(
    wire: Wire, encoding: str, reason: str
) -> None:
    """Each with the signature ``R = key, S = 0``, which a small-order key may accept for some nonces."""
    launch = wire.launch_token(["read:records:*"])
    key = bytes.fromhex(encoding)
    forged = wire.register(_forged_body(wire, launch, key, key + bytes(32)))
    refused("keys", forged, 401, "unauthorized", detail_contains=reason)
    served("keys", wire.register(wire.register_body(launch, ["read:records:P-1"])))


def test_non_canonical_base64_of_a_genuine_key_is_refused(wire: Wire) -> None:
    """A second spelling of one key (padding bits set) would give one key two registrations' worth of identity."""
    launch = wire.launch_token(["read:records:*"])
    body = wire.register_body(launch, ["read:records:P-1"])
    spelled = body["public_key"][:-2] + chr(ord(body["public_key"][-2]) + 1) + "="  # 32 bytes: 2 spare bits
    assert base64.b64decode(spelled) == base64.b64decode(body["public_key"])
    refused("keys", wire.register({**body, "public_key": spelled}), 401, "unauthorized")
    served("keys", wire.register(body))


def test_the_check_accepts_genuine_keys_and_refuses_each_small_order_point() -> None:
    """The one check every key goes through: nothing genuine refused, nothing forgeable accepted."""
    for _ in range(200):
        assert public_key_problem(Ed25519PrivateKey.generate().public_key().public_bytes_raw()) is None
    counted("keys", "served")
    for encoding in SMALL_ORDER + NON_CANONICAL:
        assert public_key_problem(bytes.fromhex(encoding)) is not None, encoding
    counted("keys", "refused", len(SMALL_ORDER) + len(NON_CANONICAL))
    assert public_key_problem(bytes(31)) is not None


def _universal_token(kid: str) -> str:
    """A token "signed" for any claims at all: the universal signature, valid under the neutral-point key."""
    header = b64url(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": kid}).encode())
    now = int(time.time())
    claims = {"iss": "", "sub": "admin", "scope": ["admin:revoke:*"], "jti": "f" * 32, "iat": now, "nbf": now}
    payload = b64url(json.dumps({**claims, "exp": now + 300}).encode())
    return f"{header}.{payload}.{b64url(UNIVERSAL_SIGNATURE)}"


def test_the_client_refuses_a_small_order_key_in_a_jwks(local_verifier: Verifier, genuine: Genuine) -> None:
    """Whoever answers in the broker's name publishes the neutral point as its key: under it, the universal
    signature verifies for any claims. The client drops such a key and, left with none, asks the broker."""
    from fastapi import FastAPI

    hostile = FastAPI()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(IDENTITY), "kid": "neutral", "alg": "EdDSA", "use": "sig"}
    asked: list[str] = []

    @hostile.get("/.well-known/jwks.json")
    def jwks() -> dict[str, Any]:
        return {"keys": [jwk]}

    @hostile.post("/v1/token/validate")
    def validate() -> dict[str, Any]:
        asked.append("validate")
        return {"valid": False, "error": "token is invalid or expired"}

    token = _universal_token("neutral")
    with serve_asgi(hostile) as url, Verifier(url) as verifier, pytest.raises(TokenInvalid):
        verifier.verify(token)
    assert asked == ["validate"]  # the key was never used: the token went to the (here refusing) broker
    counted("keys", "refused")
    assert local_verifier.verify(genuine.agent).scope == ("read:records:P-1",)
    assert local_verifier.verification_mode == "local"
    counted("keys", "served")
