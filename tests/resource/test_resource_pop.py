"""Proof of possession on the resource side: every proof fault, against every helper, over the real wire.

The broker (extensions on) binds each token to its agent's key (``cnf.jkt``); the client presents it with a fresh
DPoP proof per request. Each fault below is what a thief with a copy of the token (from a log, an HTTP hop) or a
careless client can send; all are refused with 401 and a ``DPoP`` challenge by ``require`` (local and remote
verification), the FastAPI dependency, the ASGI middleware and the Flask decorator — and the same request done
right is served, so each refusal test can fail.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from resource_support import APPS, READ, serve_asgi, serve_wsgi
from support import feed_reader

from agentwrit_tools import AsyncVerifier, Broker, Credential, Verifier
from agentwrit_tools.client import CredentialAuth
from agentwrit_tools.pop import make_proof
from agentwrit_tools.resource import AccessRefused, Gate, RequestFacts, decide, require

_names = itertools.count()
THIEF = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pop_minter(broker: Any) -> Iterator[Broker]:
    app = broker.create_app(f"pop-{next(_names)}", ["read:records:*", "write:records:*"])
    with Broker(broker.url, app.client_id, app.client_secret, proof_of_possession=True) as client:
        yield client


@pytest.fixture(scope="module")
def plain_minter(broker: Any) -> Iterator[Broker]:
    app = broker.create_app(f"pop-plain-{next(_names)}", ["read:records:*"])
    with Broker(broker.url, app.client_id, app.client_secret) as client:
        yield client


def _mint(minter: Broker, scope: str = "read:records:P-1") -> Credential:
    return minter.mint(scope, orch_id="pop-tests", task_id=f"pop-{next(_names)}", ttl=120)


@pytest.fixture
def bound(pop_minter: Broker) -> Iterator[Credential]:
    with _mint(pop_minter) as credential:
        assert credential.key_bound
        assert credential.claims.jkt
        yield credential


@pytest.fixture
def unbound(plain_minter: Broker) -> Iterator[Credential]:
    with _mint(plain_minter) as credential:
        assert not credential.key_bound
        yield credential


@pytest.fixture(scope="module", params=sorted(APPS))
def api(request: pytest.FixtureRequest, broker: Any) -> Iterator[str]:
    """Each protected test app over a real server, verifying locally (JWKS + revocation feed)."""
    framework: str = request.param
    options: dict[str, Any] = {"revocation_bound": 0.3, **feed_reader(broker)}
    if framework == "fastapi":
        with serve_asgi(APPS[framework](AsyncVerifier(broker.url, **options), None)) as url:
            yield url
        return
    with Verifier(broker.url, **options) as verifier:
        app = APPS[framework](verifier, None)
        with serve_asgi(app) if framework == "asgi" else serve_wsgi(app) as url:
            yield url


@pytest.fixture(scope="module", params=["local", "remote"])
def verifier(request: pytest.FixtureRequest, broker: Any) -> Iterator[Verifier]:
    if request.param == "local":
        with Verifier(broker.url, revocation_bound=0.3, **feed_reader(broker)) as local:
            yield local
        return
    with Verifier(broker.url, strict_verify=True) as remote:
        yield remote


# ---- the faults ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One request as an attacker (or a careless client) sends it."""

    method: str
    path: str
    authorization: str
    proofs: tuple[str, ...]


def _proof(cred: Credential, method: str, url: str, **options: Any) -> str:
    key = options.pop("key", cred._key)
    return make_proof(key, method, url, options.pop("token", cred.access_token), **options)


def _dpop(cred: Credential, *proofs: str, path: str = "/records/P-1", method: str = "GET") -> Sent:
    return Sent(method, path, f"DPoP {cred.access_token}", proofs)


Fault = Callable[[Credential, Credential, str], Sent]
"""(bound credential, another bound credential, base URL) -> the request to send."""

FAULTS: dict[str, tuple[Fault, str, str]] = {
    # name: (build, the challenge's error, a phrase of the problem's detail)
    "bearer-copy": (
        lambda c, o, base: Sent("GET", "/records/P-1", f"Bearer {c.access_token}", ()),
        "invalid_token",
        "bound to a key",
    ),
    "no-proof": (lambda c, o, base: _dpop(c), "invalid_dpop_proof", "exactly one DPoP proof"),
    "two-proofs": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-1"), _proof(c, "GET", base + "/records/P-1")),
        "invalid_dpop_proof",
        "exactly one DPoP proof",
    ),
    "malformed": (lambda c, o, base: _dpop(c, "abc.def.ghi"), "invalid_dpop_proof", "malformed"),
    "thief-key": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-1", key=THIEF)),
        "invalid_dpop_proof",
        "not signed by the key",
    ),
    "other-holders-key": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-1", key=o._key)),
        "invalid_dpop_proof",
        "not signed by the key",
    ),
    "wrong-method": (
        lambda c, o, base: _dpop(c, _proof(c, "POST", base + "/records/P-1")),
        "invalid_dpop_proof",
        "another HTTP method",
    ),
    "wrong-url": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-2")),
        "invalid_dpop_proof",
        "another URL",
    ),
    "other-host": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", "http://api.elsewhere.test/records/P-1")),
        "invalid_dpop_proof",
        "another URL",
    ),
    "stale": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-1", now=time.time() - 120)),
        "invalid_dpop_proof",
        "too old",
    ),
    "from-the-future": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-1", now=time.time() + 120)),
        "invalid_dpop_proof",
        "too old or from the future",
    ),
    "for-another-token": (
        lambda c, o, base: _dpop(c, _proof(c, "GET", base + "/records/P-1", token=o.access_token)),
        "invalid_dpop_proof",
        "another access token",
    ),
    "small-order-key": (  # refused as a foreign key: it cannot hash to a jkt the broker bound
        lambda c, o, base: _dpop(c, _small_order_proof(base + "/records/P-1")),
        "invalid_dpop_proof",
        "not signed by the key",
    ),
}


def _small_order_proof(url: str) -> str:
    """A proof whose ``jwk`` is the neutral point (a small-order key, for which signatures can be forged)."""
    import base64
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    neutral = (1).to_bytes(32, "little")
    header = {"alg": "EdDSA", "typ": "dpop+jwt", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64(neutral)}}
    claims = {"jti": "small-order-0001", "htm": "GET", "htu": url, "iat": int(time.time()), "ath": "x"}
    head, body = b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(neutral + bytes(32))}"  # R = A (the neutral point), S = 0


def _send(base: str, sent: Sent) -> httpx.Response:
    headers = [("Authorization", sent.authorization), *(("DPoP", proof) for proof in sent.proofs)]
    return httpx.request(sent.method, base + sent.path, headers=headers, timeout=10)


def _assert_refused(response: httpx.Response, error: str, phrase: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["error_code"] == "unauthorized"
    assert phrase in body["detail"], body
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error}"' in challenge
    assert 'algs="EdDSA"' in challenge


# ---- over HTTP: FastAPI, ASGI middleware, Flask -------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_proof_fault_is_refused_by_each_http_helper(
    api: str, bound: Credential, pop_minter: Broker, fault: str
) -> None:
    build, error, phrase = FAULTS[fault]
    with _mint(pop_minter) as other:
        _assert_refused(_send(api, build(bound, other, api)), error, phrase)
    # Control: the holder's own request, proof made right, is served.
    ok = httpx.get(f"{api}/records/P-1", headers=bound.headers_for("GET", f"{api}/records/P-1"), timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.json()["jti"] == bound.claims.jti


def test_a_replayed_proof_is_refused_once_used(api: str, bound: Credential) -> None:
    headers = bound.headers_for("GET", f"{api}/records/P-1")
    first = httpx.get(f"{api}/records/P-1", headers=headers, timeout=10)
    assert first.status_code == 200, first.text
    _assert_refused(httpx.get(f"{api}/records/P-1", headers=headers, timeout=10), "invalid_dpop_proof", "already used")
    fresh = httpx.get(f"{api}/records/P-1", headers=bound.headers_for("GET", f"{api}/records/P-1"), timeout=10)
    assert fresh.status_code == 200


def test_a_proof_for_one_url_replayed_at_another_is_refused(api: str, bound: Credential) -> None:
    headers = bound.headers_for("GET", f"{api}/records/P-1")
    assert httpx.get(f"{api}/records/P-1", headers=headers, timeout=10).status_code == 200
    for other in ("/strict/P-1", "/search?patient_id=P-1"):
        _assert_refused(httpx.get(api + other, headers=headers, timeout=10), "invalid_dpop_proof", "another URL")
    # Unused, but made for /records: still refused at /strict.
    unused = bound.headers_for("GET", f"{api}/records/P-1")
    _assert_refused(httpx.get(f"{api}/strict/P-1", headers=unused, timeout=10), "invalid_dpop_proof", "another URL")


def test_the_query_string_is_not_part_of_what_a_proof_names(api: str, bound: Credential) -> None:
    response = httpx.get(
        f"{api}/search", params={"patient_id": "P-1"}, headers=bound.headers_for("GET", f"{api}/search"), timeout=10
    )
    assert response.status_code == 200, response.text


def test_a_token_without_cnf_is_refused_where_proof_is_demanded(api: str, unbound: Credential) -> None:
    response = httpx.get(f"{api}/strict/P-1", headers=unbound.bearer_header, timeout=10)
    _assert_refused(response, "invalid_token", "accepts only key-bound tokens")
    missing = httpx.get(f"{api}/strict/P-1", timeout=10)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("DPoP")
    # Where proof is not demanded, the bearer token still works (the reference contract's tokens keep working).
    assert httpx.get(f"{api}/records/P-1", headers=unbound.bearer_header, timeout=10).status_code == 200


def test_an_unbound_token_sent_with_the_dpop_scheme_is_refused(api: str, unbound: Credential) -> None:
    proof = make_proof(THIEF, "GET", f"{api}/records/P-1", unbound.access_token)
    response = httpx.get(
        f"{api}/records/P-1", headers={"Authorization": f"DPoP {unbound.access_token}", "DPoP": proof}, timeout=10
    )
    _assert_refused(response, "invalid_token", "must be key-bound")


def test_a_bound_token_with_its_proof_passes_where_proof_is_demanded(api: str, bound: Credential) -> None:
    with httpx.Client(auth=CredentialAuth(bound), timeout=10) as client:
        strict = client.get(f"{api}/strict/P-1")
        assert strict.status_code == 200, strict.text
        assert strict.json()["sub"] == bound.agent_id
        # Every request through the auth gets its own proof: the same client may call again.
        assert client.get(f"{api}/strict/P-1").status_code == 200
        # A key-bound token holding another patient's scope is still refused on scope (403), not let through.
        assert client.get(f"{api}/strict/P-2").status_code == 403


def test_a_delegated_token_is_bound_to_the_delegates_key(api: str, bound: Credential, pop_minter: Broker) -> None:
    with _mint(pop_minter) as delegate, bound.delegate(delegate, "read:records:P-1", ttl=60) as delegated:
        assert delegated.claims.jkt == delegate.claims.jkt != bound.claims.jkt
        ok = httpx.get(f"{api}/records/P-1", headers=delegated.headers_for("GET", f"{api}/records/P-1"), timeout=10)
        assert ok.status_code == 200, ok.text
        # The delegator's key is not the delegated token's key.
        stolen = make_proof(bound._key, "GET", f"{api}/records/P-1", delegated.access_token)
        response = httpx.get(
            f"{api}/records/P-1", headers={"Authorization": f"DPoP {delegated.access_token}", "DPoP": stolen}
        )
        _assert_refused(response, "invalid_dpop_proof", "not signed by the key")


# ---- require(): no web framework in between -------------------------------------------------------------------

URL = "https://records.example.test/records/P-1"


def _require(verifier: Verifier, cred: Credential, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"params": {"patient_id": "P-1"}, "access_log": None, "method": "GET", "url": URL}
    return require(verifier, cred.access_token, READ, **{**options, **kwargs})


@pytest.mark.parametrize(
    "fault",
    sorted(set(FAULTS) - {"no-proof", "two-proofs"}),  # one header value at most: require() takes one proof
)
def test_each_proof_fault_is_refused_by_require(
    verifier: Verifier, bound: Credential, pop_minter: Broker, fault: str
) -> None:
    build, _, phrase = FAULTS[fault]
    with _mint(pop_minter) as other:
        sent = build(bound, other, "https://records.example.test")
    dpop = sent.proofs[0] if sent.proofs else None
    with pytest.raises(AccessRefused) as refused:
        _require(verifier, bound, dpop=dpop, method=sent.method)
    assert refused.value.status_code == 401
    assert phrase in refused.value.refusal.detail
    assert refused.value.headers()["WWW-Authenticate"].startswith("DPoP ")
    claims = _require(verifier, bound, dpop=bound.headers_for("GET", URL)["DPoP"])
    assert claims.jti == bound.claims.jti


def test_require_refuses_a_replayed_proof_and_a_missing_one(verifier: Verifier, bound: Credential) -> None:
    proof = bound.headers_for("GET", URL)["DPoP"]
    assert _require(verifier, bound, dpop=proof).jkt == bound.claims.jkt
    with pytest.raises(AccessRefused, match="already used"):
        _require(verifier, bound, dpop=proof)
    facts = RequestFacts((f"DPoP {bound.access_token}",), params={"patient_id": "P-1"}, method="GET", url=URL)
    verdict = decide(verifier, Gate(READ, access_log=None), facts)
    assert verdict.refusal is not None
    assert verdict.refusal.reason == "dpop missing"


def test_require_demands_key_bound_tokens_when_told(verifier: Verifier, unbound: Credential) -> None:
    with pytest.raises(AccessRefused, match="only key-bound tokens"):
        _require(verifier, unbound, possession="required")
    assert _require(verifier, unbound).jti == unbound.claims.jti  # "auto": a bearer token is fine


def test_the_refusal_is_recorded_under_the_stolen_tokens_claims(verifier: Verifier, bound: Credential) -> None:
    records: list[Any] = []
    with pytest.raises(AccessRefused):
        require(verifier, bound.access_token, READ, params={"patient_id": "P-1"}, access_log=records.append)
    [record] = records
    assert (record.outcome, record.status, record.reason) == ("unauthorized", 401, "dpop bound token as bearer")
    assert record.jti == bound.claims.jti
    assert record.required == ("read:records:P-1",)
