"""Token attacks against the broker: one named regression test per attack, on validate and on every Bearer endpoint.

``POST /v1/token/validate`` must answer ``{"valid": false}`` with the one generic message; every Bearer-protected
endpoint must answer 401 ``unauthorized`` problem JSON — and nothing the forged request asked for may happen: no
revocation of the victim task, no app created, and the genuine token the forgery was made from still works (a
forged copy of its ``jti`` must not be able to release it).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from security_support import BEARER_ENDPOINTS, Forgeries, Forgery, Genuine, Wire, assert_problem, ok

# The broker reads at most this much header (uvicorn/h11); longer Authorization headers never reach our code and
# are refused by the HTTP server itself.
_HEADER_LIMIT = 16 * 1024


def _forged(genuine: Genuine, attack: Forgery) -> list[str]:
    tokens = attack(genuine, genuine.agent) + attack(genuine, genuine.admin) + attack(genuine, genuine.delegated)
    assert tokens
    return tokens


def refused_by_validate(wire: Wire, genuine: Genuine, attack: Forgery) -> None:
    for token in _forged(genuine, attack):
        wire.assert_invalid(token)
    assert wire.is_valid(genuine.agent), "the genuine token stopped validating"


def _nothing_happened(wire: Wire, genuine: Genuine) -> None:
    assert wire.is_valid(genuine.agent)
    assert wire.is_valid(genuine.delegated)
    feed = ok(wire.feed(limit=1000))["revocations"]
    assert ("task", "victim-task") not in [(r["level"], r["target"]) for r in feed]
    apps = ok(wire.get("/v1/admin/apps", headers=wire.admin()))["apps"]
    assert "forged-app" not in [app["name"] for app in apps]


def refused_by_bearer_endpoints(wire: Wire, genuine: Genuine, attack: Forgery) -> None:
    for token in _forged(genuine, attack):
        header = f"Bearer {token}".encode()
        for method, path, body in BEARER_ENDPOINTS:
            try:
                resp = wire.client.request(method, path, json=body, headers={"Authorization": header})
            except (httpx.RemoteProtocolError, httpx.ReadError):
                assert len(header) > _HEADER_LIMIT, f"{path}: connection dropped for a {len(header)}-byte header"
                continue
            if len(header) > _HEADER_LIMIT and resp.status_code in (400, 431):
                continue  # refused by the HTTP server before routing
            assert_problem(resp, 401, "unauthorized")
    _nothing_happened(wire, genuine)


def test_alg_none_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.alg_none)


def test_alg_none_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.alg_none)


def test_hs256_keyed_with_raw_public_key_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.hs256_raw_public_key)


def test_hs256_keyed_with_raw_public_key_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.hs256_raw_public_key)


def test_hs256_keyed_with_jwk_json_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.hs256_jwk_json)


def test_hs256_keyed_with_jwk_json_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.hs256_jwk_json)


def test_hs256_keyed_with_pem_public_key_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.hs256_pem_public_key)


def test_hs256_keyed_with_pem_public_key_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.hs256_pem_public_key)


def test_kid_mismatch_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.kid_mismatch)


def test_kid_mismatch_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.kid_mismatch)


def test_kid_path_traversal_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.kid_path_traversal)


def test_kid_path_traversal_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.kid_path_traversal)


def test_kid_sql_injection_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.kid_sql_injection)
    # The injected SQL did nothing either: the tables it named still answer.
    assert wire.is_valid(genuine.agent)
    assert ok(wire.get("/v1/health"))["db_connected"] is True


def test_kid_sql_injection_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.kid_sql_injection)


def test_very_long_kid_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.kid_very_long)


def test_very_long_kid_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.kid_very_long)


def test_unknown_key_with_our_kid_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.unknown_key_with_our_kid)


def test_unknown_key_with_our_kid_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.unknown_key_with_our_kid)


def test_tampered_header_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.tampered_header)


def test_tampered_header_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.tampered_header)


def test_tampered_payload_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.tampered_payload)


def test_tampered_payload_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.tampered_payload)


def test_tampered_signature_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.tampered_signature)


def test_tampered_signature_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.tampered_signature)


def test_truncated_token_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.truncated)


def test_truncated_token_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.truncated)


def test_garbage_token_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.garbage)
    for body in ({"token": ""}, {"token": "   "}):
        assert ok(wire.post("/v1/token/validate", json=body))["valid"] is False
    for body in ({"token": None}, {"token": 12}, {"token": ["a.b.c"]}, {"token": {"alg": "none"}}, {}):
        assert_problem(wire.post("/v1/token/validate", json=body), 400, "invalid_request")


def test_garbage_token_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.garbage)
    for header in ("", "Bearer", "Basic YWRtaW46YWRtaW4=", "Bearer a b", "bearer\tx.y.z", "Token x.y.z"):
        resp = wire.post("/v1/token/renew", headers={"Authorization": header})
        assert_problem(resp, 401, "unauthorized")


def test_expired_token_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.expired)


def test_expired_token_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.expired)


def test_nbf_in_the_future_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.nbf_in_future)


def test_nbf_in_the_future_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.nbf_in_future)


def test_wrong_issuer_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.wrong_issuer)


def test_wrong_issuer_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.wrong_issuer)


def test_wrong_audience_is_refused_by_broker_validate(wire: Wire, genuine: Genuine) -> None:
    refused_by_validate(wire, genuine, Forgeries.wrong_audience)


def test_wrong_audience_is_refused_by_broker_bearer_endpoints(wire: Wire, genuine: Genuine) -> None:
    refused_by_bearer_endpoints(wire, genuine, Forgeries.wrong_audience)


def test_control_genuine_tokens_are_accepted_by_broker(wire: Wire, genuine: Genuine) -> None:
    """The refusals above mean something only if the same paths accept what the broker really issued."""
    for token in (genuine.agent, genuine.admin, genuine.app, genuine.delegated):
        assert wire.is_valid(token)
    assert ok(wire.get("/v1/audit/events", params={"limit": 1}, headers={"Authorization": f"Bearer {genuine.admin}"}))
    claims: dict[str, Any] = wire.validate(genuine.agent)["claims"]
    assert claims["iss"] == "https://broker.security.test"
    assert claims["aud"] == ["records-api"]


@pytest.mark.parametrize("which", ["sibling_issuer", "sibling_audience"])
def test_control_sibling_tokens_are_genuine_where_they_were_issued(genuine: Genuine, siblings: Any, which: str) -> None:
    """The sibling tokens used above really are valid tokens of a broker holding the same key."""
    by_issuer, by_audience = siblings
    running = by_issuer if which == "sibling_issuer" else by_audience
    resp = httpx.post(running.url + "/v1/token/validate", json={"token": getattr(genuine, which)})
    assert resp.json()["valid"] is True
    assert running.core.key.kid == genuine.kid
