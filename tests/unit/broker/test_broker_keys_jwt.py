"""The signing key (persistence, RFC 7638 kid) and the EdDSA-only JWS (every forgery refused)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from broker_flow import open_core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.broker import _jwt
from agentwrit_tools.broker._keys import SigningKey, b64url_encode, jwk_thumbprint, key_from_file
from agentwrit_tools.errors import ConfigurationError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "",
        "sub": "spiffe://agentwrit.local/agent/o/t/0123456789abcdef",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": "ab" * 16,
        "scope": ["read:data:x"],
        "task_id": "t",
        "orch_id": "o",
    }
    claims.update(over)
    return claims


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def test_kid_matches_the_rfc_8037_thumbprint_example() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the A.2 public key.
    assert (
        jwk_thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo") == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_kid_is_recomputable_from_the_published_jwk(key: SigningKey) -> None:
    jwk = key.jwk()
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    assert jwk["kid"] == _b64(hashlib.sha256(canonical.encode()).digest())
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == key.public_raw


def test_key_kept_in_the_database_survives_reopening(tmp_path: Path) -> None:
    first = open_core(tmp_path / "b.db")
    kid, raw = first.key.kid, first.key.public_raw
    first.close()
    second = open_core(tmp_path / "b.db")
    try:
        assert (second.key.kid, second.key.public_raw) == (kid, raw)
    finally:
        second.close()
    other = open_core(tmp_path / "other.db")
    try:
        assert other.key.kid != kid  # a new database gets its own key
    finally:
        other.close()


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "broker.pem"
    created = key_from_file(path, None)
    assert path.stat().st_mode & 0o077 == 0
    assert key_from_file(path, None).kid == created.kid
    # ... and the database holds no key when a file is used.
    core = open_core(tmp_path / "b.db", signing_key_path=path)
    try:
        assert core.key.kid == created.kid
        assert core.conn.execute("SELECT COUNT(*) FROM signing_keys").fetchone()[0] == 0
        assert core.conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'signing_key'").fetchone()[0] == 0
    finally:
        core.close()


def test_a_key_file_that_is_not_ed25519_is_a_configuration_error(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ConfigurationError, match="Ed25519"):
        key_from_file(path, None)


def test_roundtrip_and_header(key: SigningKey) -> None:
    token = _jwt.encode(_claims(), key)
    assert _jwt.decode_unverified_header(token) == {"alg": "EdDSA", "typ": "JWT", "kid": key.kid}
    assert _jwt.verify(token, key, now=time.time(), issuer="")["sub"].startswith("spiffe://")
    # An independent implementation agrees on the signature.
    public_pem = key._public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pyjwt.decode(token, public_pem, algorithms=["EdDSA"])["jti"] == "ab" * 16


def test_alg_none_is_refused(key: SigningKey) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.{_b64(b'x' * 64)}"):
        with pytest.raises(_jwt.TokenInvalid, match="algorithm"):
            _jwt.verify(token, key, now=time.time(), issuer="")


def test_hs256_keyed_with_the_public_key_is_refused(key: SigningKey) -> None:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(_claims(scope=["admin:revoke:*"])).encode())
    for secret in (key.public_raw, key.x.encode(), json.dumps(key.jwk()).encode()):
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        with pytest.raises(_jwt.TokenInvalid):
            _jwt.verify(f"{header}.{payload}.{_b64(mac)}", key, now=time.time(), issuer="")


def test_a_token_signed_by_another_key_is_refused_even_with_our_kid(key: SigningKey) -> None:
    other = SigningKey(Ed25519PrivateKey.generate())
    forged = _jwt.encode(_claims(), other)
    payload = forged.split(".")[1]
    ours = _b64(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": key.kid}, separators=(",", ":")).encode())
    resigned = b64url_encode(other.sign(f"{ours}.{payload}".encode()))
    for token in (forged, f"{ours}.{payload}.{resigned}"):
        with pytest.raises(_jwt.TokenInvalid):
            _jwt.verify(token, key, now=time.time(), issuer="")


def test_tampered_payload_is_refused(key: SigningKey) -> None:
    head, _, sig = _jwt.encode(_claims(), key).split(".")
    wider = _b64(json.dumps(_claims(scope=["read:data:*"])).encode())
    with pytest.raises(_jwt.TokenInvalid, match="signature"):
        _jwt.verify(f"{head}.{wider}.{sig}", key, now=time.time(), issuer="")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -1}, "expired"),
        ({"nbf": 3600}, "not yet valid"),
        ({"iss": "https://elsewhere"}, "issuer"),
        ({"exp": "soon"}, "exp"),
        ({"exp": True}, "exp"),
        ({"scope": "read:data:x"}, "scope"),
    ],
)
def test_claims_are_checked(key: SigningKey, changes: dict[str, Any], reason: str) -> None:
    # Times are offsets from now, resolved when the test runs (not at collection, which may be long before).
    now = int(time.time())
    resolved = {k: now + v if k in ("exp", "nbf") and type(v) is int else v for k, v in changes.items()}
    with pytest.raises(_jwt.TokenInvalid, match=reason):
        _jwt.verify(_jwt.encode(_claims(**resolved), key), key, now=time.time(), issuer="")


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "....", "x" * 20000, "é.é.é", None, 42])
def test_garbage_is_refused_without_crashing(key: SigningKey, token: Any) -> None:
    with pytest.raises(_jwt.TokenInvalid):
        _jwt.verify(token, key, now=time.time(), issuer="")
