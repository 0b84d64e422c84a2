"""The pure proof-of-possession module: thumbprints, target URIs, proofs and the replay cache (no sockets)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.pop import (
    MAX_PROOF_LENGTH,
    Proof,
    ProofInvalid,
    ReplayCache,
    access_token_hash,
    check_proof,
    key_thumbprint,
    make_proof,
    target_uri,
    thumbprint,
)

KEY = Ed25519PrivateKey.generate()
TOKEN = "header.payload.signature"
URL = "https://api.example.test/records/P-1"
NOW = 1_800_000_000.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _check(proof: str, **overrides: object) -> Proof:
    options: dict[str, object] = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "jkt": key_thumbprint(KEY),
        "now": NOW,
    }
    return check_proof(proof, **{**options, **overrides})  # type: ignore[arg-type]


def _reason(proof: str, **overrides: object) -> str:
    with pytest.raises(ProofInvalid) as refused:
        _check(proof, **overrides)
    return refused.value.reason


def test_thumbprint_matches_rfc_8037_appendix_a3() -> None:
    raw = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert thumbprint(raw) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://API.Example.test:443/a/b?q=1#frag", "https://api.example.test/a/b"),
        ("http://127.0.0.1:80", "http://127.0.0.1/"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
    ],
)
def test_target_uri_normalises_what_rfc_3986_allows(url: str, expected: str) -> None:
    assert target_uri(url) == expected


@pytest.mark.parametrize("url", ["/relative", "ftp://host/x", "https:///nohost", ""])
def test_target_uri_refuses_what_is_not_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        target_uri(url)


def test_a_proof_checks_out_and_says_who_signed_it() -> None:
    proof = make_proof(KEY, "get", URL + "?page=2", TOKEN, now=NOW, jti="fixed-id-0001")
    checked = _check(proof)
    assert checked == Proof("fixed-id-0001", int(NOW), key_thumbprint(KEY))
    header = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "EdDSA"
    assert set(header["jwk"]) == {"kty", "crv", "x"}
    claims = json.loads(base64.urlsafe_b64decode(proof.split(".")[1] + "=="))
    assert claims == {
        "ath": access_token_hash(TOKEN),
        "htm": "GET",
        "htu": URL,
        "iat": int(NOW),
        "jti": "fixed-id-0001",
    }


def test_every_fault_has_its_reason() -> None:
    good = make_proof(KEY, "GET", URL, TOKEN, now=NOW)
    assert _reason(make_proof(Ed25519PrivateKey.generate(), "GET", URL, TOKEN, now=NOW)) == "wrong_key"
    assert _reason(good, method="POST") == "method"
    assert _reason(good, url="https://api.example.test/records/P-2") == "url"
    assert _reason(good, now=NOW + 61) == "stale"
    assert _reason(good, now=NOW - 6) == "stale"
    assert _check(good, now=NOW - 4).jti  # within the leeway
    assert _reason(good, access_token="another.token.here") == "token"
    head, body, signature = good.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert _reason(f"{head}.{body}.{flipped}") == "signature"
    other_body = _b64(json.dumps({"jti": "x" * 10, "htm": "GET", "htu": URL, "iat": int(NOW), "ath": "y"}).encode())
    assert _reason(f"{head}.{other_body}.{signature}") == "signature"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h, c: {**h, "typ": "JWT"},
        lambda h, c: {**h, "alg": "HS256"},
        lambda h, c: {**h, "crit": ["exp"]},
        lambda h, c: {**h, "jwk": {**h["jwk"], "kty": "EC"}},
        lambda h, c: {**h, "jwk": {**h["jwk"], "d": h["jwk"]["x"]}},
        lambda h, c: {k: v for k, v in h.items() if k != "jwk"},
    ],
)
def test_a_header_that_is_not_an_eddsa_dpop_proof_is_malformed(mutate: object) -> None:
    header = {"alg": "EdDSA", "typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": _b64(bytes(32))}}
    changed = mutate(header, None)  # type: ignore[operator]
    forged = f"{_b64(json.dumps(changed).encode())}.{_b64(b'{}')}.{_b64(bytes(64))}"
    assert _reason(forged) == "malformed"


@pytest.mark.parametrize(
    "proof", ["", "a.b", "a.b.c.d", "x" * (MAX_PROOF_LENGTH + 1), "é.b.c", "YQ==.YQ.YQ", "YR.YQ.YQ"]
)
def test_garbage_is_malformed(proof: str) -> None:
    assert _reason(proof) == "malformed"


def test_claims_of_the_wrong_type_are_malformed() -> None:
    def signed(claims: dict[str, object]) -> str:
        header = {
            "alg": "EdDSA",
            "typ": "dpop+jwt",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": _b64(KEY.public_key().public_bytes_raw())},
        }
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        return f"{signing}.{_b64(KEY.sign(signing.encode()))}"

    base = {"jti": "id-000001", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    assert _check(signed(base)).jti == "id-000001"
    for change in ({"iat": True}, {"iat": "now"}, {"jti": "short"}, {"jti": "with space x"}, {"htm": None}):
        assert _reason(signed({**base, **change})) == "malformed", change


def test_a_small_order_key_is_refused_even_when_it_hashes_to_the_jkt() -> None:
    neutral = (1).to_bytes(32, "little")
    header = {"alg": "EdDSA", "typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": _b64(neutral)}}
    claims = {"jti": "id-000001", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    forged = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(neutral + bytes(32))}"
    assert _reason(forged, jkt=thumbprint(neutral)) == "key_refused"


def test_the_replay_cache_refuses_a_second_use_until_the_proof_is_stale() -> None:
    clock = [NOW]
    cache = ReplayCache(clock=lambda: clock[0])
    proof = Proof("id-000001", int(NOW), "jkt")
    cache.admit(proof, until=NOW + 65)
    with pytest.raises(ProofInvalid) as replayed:
        cache.admit(proof, until=NOW + 65)
    assert replayed.value.reason == "replayed"
    cache.admit(Proof("id-000001", int(NOW), "other-key"), until=NOW + 65)  # another key's proof: another entry
    clock[0] = NOW + 66
    cache.admit(proof, until=NOW + 131)  # the entry expired with the proof's freshness
    assert len(cache) == 1


def test_a_full_replay_cache_refuses_rather_than_forgets() -> None:
    clock = [NOW]
    cache = ReplayCache(2, clock=lambda: clock[0])
    cache.admit(Proof("id-000001", 0, "k"), until=NOW + 10)
    cache.admit(Proof("id-000002", 0, "k"), until=NOW + 50)
    with pytest.raises(ProofInvalid) as full:
        cache.admit(Proof("id-000003", 0, "k"), until=NOW + 50)
    assert full.value.reason == "replay_cache_full"
    with pytest.raises(ProofInvalid, match="already used"):
        cache.admit(Proof("id-000001", 0, "k"), until=NOW + 10)
    clock[0] = NOW + 11  # the first entry is stale now: room again
    cache.admit(Proof("id-000003", 0, "k"), until=NOW + 60)
    with pytest.raises(ValueError, match="at least 1"):
        ReplayCache(0)


def test_a_foreign_small_order_key_is_refused_as_a_foreign_key_without_curve_arithmetic() -> None:
    neutral = (1).to_bytes(32, "little")
    header = {"alg": "EdDSA", "typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": _b64(neutral)}}
    claims = {"jti": "id-000002", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    forged = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(neutral + bytes(32))}"
    assert _reason(forged) == "wrong_key"
