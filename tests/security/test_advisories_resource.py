"""Token attacks against the resource side — what the APIs behind the tools use to check a presented token.

Each attack goes three ways: :func:`agentwrit_tools.resource.require` with a local verifier (JWKS + feed) and with a
remote one (``validate`` every time), and ``GET /records/P-2`` on a FastAPI service protected by the
``Requires`` dependency over a real server. The genuine token holds ``read:records:P-1``; every forgery is widened to
``read:records:*``, so accepting one would open P-2. All must be refused with 401 ``unauthorized``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from security_support import RESOURCE_PATIENT, RESOURCE_SCOPE, Forgeries, Forgery, Genuine

from agentwrit_tools import Verifier
from agentwrit_tools.resource import AccessRefused, require

_HEADER_LIMIT = 16 * 1024


def _refused_by_require(verifier: Verifier, token: str) -> None:
    with pytest.raises(AccessRefused) as refused:
        require(verifier, token, RESOURCE_SCOPE, params={"patient_id": RESOURCE_PATIENT}, access_log=None)
    assert (refused.value.status_code, refused.value.error_code) == (401, "unauthorized"), refused.value


def _refused_over_http(url: str, token: str) -> None:
    header = f"Bearer {token}".encode()
    try:
        resp = httpx.get(f"{url}/records/{RESOURCE_PATIENT}", headers={"Authorization": header}, timeout=30)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        assert len(header) > _HEADER_LIMIT
        return
    if len(header) > _HEADER_LIMIT and resp.status_code in (400, 431):
        return
    assert resp.status_code == 401, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["error_code"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")


def refused_by_resource(genuine: Genuine, attack: Forgery, local: Verifier, remote: Verifier, records_url: str) -> None:
    tokens = attack(genuine, genuine.agent) + attack(genuine, genuine.delegated)
    assert tokens
    for token in tokens:
        _refused_by_require(local, token)
        _refused_by_require(remote, token)
        _refused_over_http(records_url, token)
    # Control: the same three paths let the genuine token reach what it does cover.
    for verifier in (local, remote):
        claims = require(verifier, genuine.agent, RESOURCE_SCOPE, params={"patient_id": "P-1"}, access_log=None)
        assert claims.scope == ("read:records:P-1",)
    resp = httpx.get(f"{records_url}/records/P-1", headers={"Authorization": f"Bearer {genuine.agent}"})
    assert resp.status_code == 200, resp.text


Check = Callable[[Forgery], None]


@pytest.fixture
def check(genuine: Genuine, local_verifier: Verifier, remote_verifier: Verifier, records_url: str) -> Check:
    def run(attack: Forgery) -> None:
        refused_by_resource(genuine, attack, local_verifier, remote_verifier, records_url)

    return run


def test_alg_none_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.alg_none)


def test_hs256_keyed_with_raw_public_key_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.hs256_raw_public_key)


def test_hs256_keyed_with_jwk_json_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.hs256_jwk_json)


def test_hs256_keyed_with_pem_public_key_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.hs256_pem_public_key)


def test_kid_mismatch_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.kid_mismatch)


def test_kid_path_traversal_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.kid_path_traversal)


def test_kid_sql_injection_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.kid_sql_injection)


def test_very_long_kid_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.kid_very_long)


def test_unknown_key_with_our_kid_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.unknown_key_with_our_kid)


def test_tampered_header_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.tampered_header)


def test_tampered_payload_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.tampered_payload)


def test_tampered_signature_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.tampered_signature)


def test_truncated_token_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.truncated)


def test_garbage_token_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.garbage)


def test_expired_token_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.expired)


def test_nbf_in_the_future_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.nbf_in_future)


def test_wrong_issuer_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.wrong_issuer)


def test_wrong_audience_is_refused_by_resource_side(check: Check) -> None:
    check(Forgeries.wrong_audience)
