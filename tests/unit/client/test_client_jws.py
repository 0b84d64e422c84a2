"""The client's compact-JWS parser: only EdDSA with a kid reaches a signature check; every malformation refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from client_fakes import b64url
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.client import _jws
from agentwrit_tools.errors import TokenInvalid

KEY = Ed25519PrivateKey.generate()
NOW = time.time()


def _segment(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def _token(header: Any = None, claims: Any = None, *, key: Ed25519PrivateKey = KEY) -> str:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": "k1"} if header is None else header
    claims = {"sub": "a", "jti": "j", "exp": int(NOW) + 60} if claims is None else claims
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


def test_a_good_token_parses_and_verifies() -> None:
    parsed = _jws.parse(_token())
    assert parsed.kid == "k1"
    claims = parsed.verify(KEY.public_key())
    _jws.check_times(claims, now=NOW, leeway=2, issuer=None)
    assert claims["sub"] == "a"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "kid": "k1"},
        {"alg": "HS256", "kid": "k1"},
        {"alg": "ES256", "kid": "k1"},
        {"kid": "k1"},
        {"alg": "EdDSA"},
        {"alg": "EdDSA", "kid": ""},
        {"alg": "EdDSA", "kid": 7},
        {"alg": "EdDSA", "kid": "k1", "crit": ["exp"]},
        {"alg": "EdDSA", "kid": "k1", "typ": "JOSE+JSON"},
        ["alg", "EdDSA"],
    ],
)
def test_headers_other_than_eddsa_with_a_kid_are_refused_before_any_signature_check(header: Any) -> None:
    with pytest.raises(TokenInvalid):
        _jws.parse(_token(header))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.replace(".", "=.", 1),  # padding is not base64url as JOSE uses it
        lambda t: t[:10] + "!" + t[11:],  # a character outside the alphabet (base64 would skip it)
        lambda t: t[:10] + "+" + t[11:],  # standard base64, not url-safe
        lambda t: t.rsplit(".", 1)[0] + ".AAAA",  # a signature of the wrong size
        lambda t: t.rsplit(".", 1)[0] + ".",
        lambda t: "." + t.split(".", 1)[1],
        lambda t: t.replace(".", ".\u00e9", 1),  # non-ASCII in the payload segment
    ],
)
def test_malformed_tokens_are_refused(mangle: Any) -> None:
    with pytest.raises(TokenInvalid):
        _jws.parse(mangle(_token())).verify(KEY.public_key())


def test_a_signature_by_another_key_is_refused() -> None:
    parsed = _jws.parse(_token(key=Ed25519PrivateKey.generate()))
    with pytest.raises(TokenInvalid):
        parsed.verify(KEY.public_key())


def test_a_payload_that_is_not_an_object_is_refused_after_the_signature() -> None:
    parsed = _jws.parse(_token(claims=["sub", "a"]))
    with pytest.raises(TokenInvalid):
        parsed.verify(KEY.public_key())


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": "j", "exp": int(NOW) + 60},
        {"sub": "a", "exp": int(NOW) + 60},
        {"sub": "a", "jti": "j"},
        {"sub": "a", "jti": "j", "exp": str(int(NOW) + 60)},
        {"sub": "a", "jti": "j", "exp": True},
        {"sub": "a", "jti": "j", "exp": int(NOW) - 3},
        {"sub": "a", "jti": "j", "exp": int(NOW) + 60, "nbf": int(NOW) + 30},
        {"sub": "a", "jti": "j", "exp": int(NOW) + 60, "iat": int(NOW) + 30},
        {"sub": "a", "jti": "j", "exp": int(NOW) + 60, "nbf": "0"},
    ],
)
def test_claims_are_checked_with_leeway(claims: dict[str, Any]) -> None:
    with pytest.raises(TokenInvalid):
        _jws.check_times(claims, now=NOW, leeway=2, issuer=None)


def test_leeway_tolerates_small_skew_and_issuer_is_checked_when_configured() -> None:
    claims = {"sub": "a", "jti": "j", "exp": int(NOW) - 1, "nbf": int(NOW) + 1, "iss": "b"}
    _jws.check_times(claims, now=NOW, leeway=2, issuer="b")
    with pytest.raises(TokenInvalid):
        _jws.check_times(claims, now=NOW, leeway=2, issuer="other")


def test_the_same_header_is_checked_once_and_a_bad_one_never_remembered() -> None:
    good = _token()
    assert _jws.parse(good).kid == _jws.parse(good).kid == "k1"
    bad = _token({"alg": "HS256", "kid": "k1"})
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            _jws.parse(bad)
