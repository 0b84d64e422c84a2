"""Advisory 10: a stolen key-bound token.

A token bound to its agent's key (``cnf.jkt``) leaks — from a tool's debug log, an HTTP hop, a crash dump — with or
without the proof that travelled beside it. Every way a thief can use the copy is refused by the protected API
(FastAPI ``Requires`` over a real server, the broker under attack issuing the tokens, verification local): as a
bearer token, with a proof of the thief's own key, a proof replayed or redirected to another URL or method, a stale
one, one for another token, one whose key could forge signatures, one of another algorithm, one carrying a private
key, a token whose ``cnf`` was rewritten. Each attack is followed by the legitimate request — the holder, with a
fresh proof — which must still be served.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from security_support import ATTACKER, AUDIENCE, ISSUER, counted, jwt_parts

from agentwrit_tools import Broker, Credential, Verifier
from agentwrit_tools.pop import access_token_hash, make_proof
from agentwrit_tools.resource import AccessRefused, require

PATH = "/records/P-1"


@pytest.fixture(scope="module")
def minter(sec_broker: Any) -> Iterator[Broker]:
    app = sec_broker.create_app("pop-advisory", ["read:records:*"])
    with Broker(
        sec_broker.url, app.client_id, app.client_secret, issuer=ISSUER, audience=AUDIENCE, proof_of_possession=True
    ) as client:
        yield client


@pytest.fixture
def holder(minter: Broker) -> Iterator[Credential]:
    with minter.mint("read:records:P-1", orch_id="pop-advisory", task_id="stolen", ttl=120) as credential:
        assert credential.key_bound
        yield credential


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(header: dict[str, Any], claims: dict[str, Any], key: Ed25519PrivateKey) -> str:
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing}.{_b64(key.sign(signing.encode()))}"


def _claims(url: str, token: str, **changes: Any) -> dict[str, Any]:
    return {"jti": f"advisory-{time.time_ns()}", "htm": "GET", "htu": url, "iat": int(time.time()),
            "ath": access_token_hash(token), **changes}  # fmt: skip


def _jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(key.public_key().public_bytes_raw())}


Attack = Callable[[Credential, str], dict[str, str]]
"""From the holder's credential and the URL, the headers a thief sends."""


def _dpop(cred: Credential, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {cred.access_token}", "DPoP": proof}


def _rewritten_cnf(cred: Credential, url: str) -> dict[str, str]:
    """The token's payload re-pointed at the thief's key, the broker's signature kept."""
    head, _, signature = cred.access_token.split(".")
    _, payload = jwt_parts(cred.access_token)
    payload["cnf"] = {"jkt": _thumb(ATTACKER)}
    forged = f"{head}.{_b64(json.dumps(payload).encode())}.{signature}"
    return {"Authorization": f"DPoP {forged}", "DPoP": make_proof(ATTACKER, "GET", url, forged)}


def _thumb(key: Ed25519PrivateKey) -> str:
    from agentwrit_tools.pop import key_thumbprint

    return key_thumbprint(key)


NEUTRAL = (1).to_bytes(32, "little")
SMALL_ORDER_HEADER = {"alg": "EdDSA", "typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": _b64(NEUTRAL)}}

ATTACKS: dict[str, Attack] = {
    "the copy as a bearer token": lambda c, url: {"Authorization": f"Bearer {c.access_token}"},
    "the copy with no proof": lambda c, url: {"Authorization": f"DPoP {c.access_token}"},
    "a proof signed by the thief's key": lambda c, url: _dpop(c, make_proof(ATTACKER, "GET", url, c.access_token)),
    "a proof for another URL": lambda c, url: _dpop(c, make_proof(c._key, "GET", url + "x", c.access_token)),
    "a proof for another method": lambda c, url: _dpop(c, make_proof(c._key, "DELETE", url, c.access_token)),
    "a stale proof": lambda c, url: _dpop(c, make_proof(c._key, "GET", url, c.access_token, now=time.time() - 300)),
    "a proof for another token": lambda c, url: _dpop(c, make_proof(c._key, "GET", url, c.access_token + "x")),
    "a proof by a small-order key": lambda c, url: _dpop(
        c,
        f"{_b64(json.dumps(SMALL_ORDER_HEADER).encode())}"
        f".{_b64(json.dumps(_claims(url, c.access_token)).encode())}.{_b64(NEUTRAL + bytes(32))}",
    ),
    "an HS256 proof keyed with the public key": lambda c, url: _dpop(
        c, _hs256({"alg": "HS256", "typ": "dpop+jwt", "jwk": _jwk(c._key)}, _claims(url, c.access_token), c)
    ),
    "an unsigned proof": lambda c, url: _dpop(
        c,
        f"{_b64(json.dumps({'alg': 'none', 'typ': 'dpop+jwt', 'jwk': _jwk(c._key)}).encode())}"
        f".{_b64(json.dumps(_claims(url, c.access_token)).encode())}.",
    ),
    "a proof of type JWT": lambda c, url: _dpop(
        c, _signed({"alg": "EdDSA", "typ": "JWT", "jwk": _jwk(c._key)}, _claims(url, c.access_token), c._key)
    ),
    "a proof whose header carries a private key": lambda c, url: _dpop(
        c,
        _signed(
            {"alg": "EdDSA", "typ": "dpop+jwt", "jwk": {**_jwk(c._key), "d": _b64(bytes(32))}},
            _claims(url, c.access_token),
            c._key,
        ),
    ),
    "a cnf rewritten to the thief's key": _rewritten_cnf,
}


def _hs256(header: dict[str, Any], claims: dict[str, Any], cred: Credential) -> str:
    import hashlib
    import hmac

    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    secret = cred._key.public_key().public_bytes_raw()
    return f"{signing}.{_b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith(("DPoP ", "Bearer "))
    counted("pop", "refused")


def _served(holder: Credential, url: str) -> None:
    response = httpx.get(url, headers=holder.headers_for("GET", url), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["jti"] == holder.claims.jti
    counted("pop", "served")


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_stolen_key_bound_token_is_refused(records_url: str, holder: Credential, attack: str) -> None:
    url = records_url + PATH
    _refused(httpx.get(url, headers=ATTACKS[attack](holder, url), timeout=10))
    _served(holder, url)


def test_the_proof_that_travelled_with_the_token_is_good_once_and_only_there(
    records_url: str, holder: Credential
) -> None:
    url = records_url + PATH
    logged = holder.headers_for("GET", url)
    assert httpx.get(url, headers=logged, timeout=10).status_code == 200  # the holder's request, as logged
    counted("pop", "served")
    _refused(httpx.get(url, headers=logged, timeout=10))  # replayed
    _refused(httpx.get(records_url + "/search?patient_id=P-1", headers=logged, timeout=10))  # redirected
    _served(holder, url)


def test_a_resource_demanding_possession_refuses_bearer_tokens(
    sec_broker: Any, genuine: Any, local_verifier: Verifier, holder: Credential
) -> None:
    with pytest.raises(AccessRefused, match="only key-bound"):
        require(local_verifier, genuine.agent, "read:records:{id}", params={"id": "P-1"}, possession="required")
    counted("pop", "refused")
    url = "https://records.example.test/records/P-1"
    proof = holder.headers_for("GET", url)["DPoP"]
    claims = require(
        local_verifier, holder.access_token, "read:records:{id}", params={"id": "P-1"}, dpop=proof,
        method="GET", url=url, possession="required", access_log=None,
    )  # fmt: skip
    assert claims.jkt == holder.claims.jkt
    counted("pop", "served")
