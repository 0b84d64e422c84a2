"""Each integration (FastAPI dependency, ASGI middleware, Flask decorator) over a real server, against a real
broker verified locally (JWKS + feed) and remotely (validate): a correct token passes and its claims reach the
handler; everything else is refused with the broker's status, code and RFC 7807 body.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import pytest
from resource_support import BOUND, Minter, Served, Tokens, alg_none, signed_by_another_key, tampered

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "error_code", "request_id"}


def call(
    http: httpx.Client,
    served: Served,
    path: str,
    token: str | None = None,
    *,
    method: str = "GET",
    authorization: list[str] | None = None,
) -> tuple[httpx.Response, str]:
    rid = f"rt-{secrets.token_hex(6)}"
    headers: list[tuple[str, str]] = [("X-Request-ID", rid)]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    headers += [("Authorization", value) for value in authorization or []]
    return http.request(method, served.url + path, headers=headers), rid


def assert_problem(
    response: httpx.Response, status: int, code: str, rid: str, *, secrets_: tuple[str, ...] = ()
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) == PROBLEM_FIELDS
    assert body["type"] == f"urn:agentwrit:error:{code}"
    assert body["error_code"] == code
    assert body["status"] == status
    assert (
        body["title"] == {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}[status]
    )
    assert body["request_id"] == rid == response.headers["x-request-id"]
    assert body["instance"].startswith("/")
    assert response.headers["cache-control"] == "no-store"
    challenge = response.headers.get("www-authenticate")
    if status == 401:
        assert challenge is not None
        assert challenge.startswith("Bearer")
    if status == 403:
        assert challenge is not None
        assert challenge.startswith("Bearer ")
        assert 'error="insufficient_scope"' in challenge
    for secret in secrets_:
        for piece in (secret, *secret.split(".")):
            if len(piece) >= 8:
                assert piece not in response.text
                assert all(piece not in value for value in response.headers.values())
    return body


# ---- accepted ----------------------------------------------------------------------------------------------


def test_a_correct_token_passes_and_its_claims_reach_the_handler(
    http: httpx.Client, served: Served, tokens: Tokens
) -> None:
    response, rid = call(http, served, "/records/P-1", tokens.read_p1.access_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sub"] == tokens.read_p1.agent_id
    assert body["jti"] == tokens.read_p1.claims.jti
    assert body["patient_id"] == "P-1"
    record = served.record(rid)
    assert record.outcome == "allowed"
    assert record.status == 200
    assert record.agent_id == tokens.read_p1.agent_id
    assert record.jti == tokens.read_p1.claims.jti
    assert record.required == ("read:records:P-1",)
    assert record.held == ("read:records:P-1",)
    assert record.route in ("/records/{patient_id}", "/records/<patient_id>")
    assert record.path == "/records/P-1"
    assert record.method == "GET"


def test_a_wildcard_token_covers_any_patient(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, _ = call(http, served, "/records/P-2", tokens.read_any.access_token)
    assert response.status_code == 200
    assert response.json()["patient_id"] == "P-2"


def test_the_write_route_takes_a_write_token(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, _ = call(http, served, "/records/P-1", tokens.write_p1.access_token, method="POST")
    assert response.status_code == 200
    assert response.json()["written"] is True


def test_the_scheme_name_is_case_insensitive(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, _ = call(http, served, "/records/P-1", authorization=[f"bearer {tokens.read_p1.access_token}"])
    assert response.status_code == 200


def test_a_query_parameter_fills_the_template(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, rid = call(http, served, "/search?patient_id=P-1", tokens.read_p1.access_token)
    assert response.status_code == 200
    assert response.json()["patient_id"] == "P-1"
    assert served.record(rid).required == ("read:records:P-1",)


# ---- no usable credential: 401 -------------------------------------------------------------------------------


def test_a_missing_header_is_401_with_a_bare_challenge(http: httpx.Client, served: Served) -> None:
    response, rid = call(http, served, "/records/P-1")
    body = assert_problem(response, 401, "unauthorized", rid)
    assert body["detail"] == "missing Authorization header"
    assert body["instance"] == "/records/P-1"
    assert response.headers["www-authenticate"] == "Bearer"  # RFC 6750: no error code when nothing was presented
    record = served.record(rid)
    assert record.outcome == "unauthorized"
    assert record.agent_id is None
    assert record.jti is None
    assert record.required == ("read:records:P-1",)


@pytest.mark.parametrize(
    "value", ["Basic dXNlcjpwYXNzd29yZA==", "Token abc.def.ghi", "Bearer", "Bearerabc.def.ghi", "JWT"]
)
def test_a_non_bearer_header_is_401(http: httpx.Client, served: Served, tokens: Tokens, value: str) -> None:
    response, rid = call(http, served, "/records/P-1", authorization=[value])
    body = assert_problem(response, 401, "unauthorized", rid)
    assert body["detail"] in (
        "the Authorization header must use the Bearer or DPoP scheme",
        "missing Authorization header",
    )
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_basic_header_carrying_a_real_token_is_still_refused(
    http: httpx.Client, served: Served, tokens: Tokens
) -> None:
    token = tokens.read_p1.access_token
    response, rid = call(http, served, "/records/P-1", authorization=[f"Basic {token}"])
    assert_problem(response, 401, "unauthorized", rid, secrets_=(token,))


def test_two_authorization_headers_are_refused(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    token = tokens.read_p1.access_token
    response, rid = call(http, served, "/records/P-1", token, authorization=[f"Bearer {tokens.read_any.access_token}"])
    if served.framework == "flask":
        # werkzeug's server folds repeated headers into one comma-joined value: no longer a single b64token.
        assert_problem(response, 401, "unauthorized", rid, secrets_=(token,))
    else:
        body = assert_problem(response, 400, "invalid_request", rid, secrets_=(token,))
        assert body["detail"] == "the request must carry exactly one Authorization header"


def test_an_expired_token_is_401(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, rid = call(http, served, "/records/P-1", tokens.expired)
    body = assert_problem(response, 401, "unauthorized", rid, secrets_=(tokens.expired,))
    assert body["detail"] == "token verification failed"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert served.record(rid).agent_id is None


FORGERIES = {
    "another-key": lambda token: signed_by_another_key(token),
    "alg-none": lambda token: alg_none(token),
    "alg-none-widened": lambda token: alg_none(token, scope=["read:records:*"]),
    "tampered-scope": lambda token: tampered(token, scope=["read:records:*"]),
    "tampered-exp": lambda token: tampered(token, exp=int(time.time()) + 86400),
    "truncated": lambda token: token.rsplit(".", 1)[0],
    "garbage": lambda token: "not-a-jwt",
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_token_is_401(http: httpx.Client, served: Served, tokens: Tokens, forgery: str) -> None:
    forged = FORGERIES[forgery](tokens.read_p1.access_token)
    # P-2 is what a forger would be after; even there, nothing but 401.
    response, rid = call(http, served, "/records/P-2", forged)
    body = assert_problem(response, 401, "unauthorized", rid, secrets_=(forged, tokens.read_p1.access_token))
    assert body["detail"] == "token verification failed"
    record = served.record(rid)
    assert record.outcome == "unauthorized"
    assert record.agent_id is None
    assert record.jti is None
    assert record.held == ()


# ---- verified, but not for this: 403 -------------------------------------------------------------------------


def test_a_token_for_another_patient_is_403(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    token = tokens.read_p1.access_token
    response, rid = call(http, served, "/records/P-2", token)
    body = assert_problem(response, 403, "insufficient_scope", rid, secrets_=(token,))
    assert body["detail"] == "this endpoint requires the scope read:records:P-2"
    assert 'scope="read:records:P-2"' in response.headers["www-authenticate"]
    record = served.record(rid)
    assert record.outcome == "insufficient_scope"
    assert record.agent_id == tokens.read_p1.agent_id
    assert record.jti == tokens.read_p1.claims.jti
    assert record.required == ("read:records:P-2",)
    assert record.missing == ("read:records:P-2",)
    assert record.held == ("read:records:P-1",)


def test_a_write_token_on_a_read_route_is_403(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, rid = call(http, served, "/records/P-1", tokens.write_p1.access_token)
    body = assert_problem(response, 403, "insufficient_scope", rid)
    assert body["detail"] == "this endpoint requires the scope read:records:P-1"


def test_a_read_token_on_a_write_route_is_403(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, rid = call(http, served, "/records/P-1", tokens.read_any.access_token, method="POST")
    assert_problem(response, 403, "insufficient_scope", rid)


@pytest.mark.parametrize(
    ("query", "status"),
    [("patient_id=P-2", 403), ("patient_id=P-1&patient_id=P-2", 403), ("patient_id=P-1&patient_id=P-1", 200)],
)
def test_every_query_value_must_be_covered(
    http: httpx.Client, served: Served, tokens: Tokens, query: str, status: int
) -> None:
    response, _ = call(http, served, f"/search?{query}", tokens.read_p1.access_token)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("how", ["operator-revoke", "release"])
def test_a_revoked_token_is_refused_within_the_bound(
    http: httpx.Client, served: Served, minter: Minter, how: str
) -> None:
    cred = minter.mint("read:records:P-7")
    response, _ = call(http, served, "/records/P-7", cred.access_token)
    assert response.status_code == 200
    if how == "release":
        cred.release()
    else:
        minter.broker.admin.revoke("token", cred.claims.jti)
    time.sleep(BOUND + 0.05)
    response, rid = call(http, served, "/records/P-7", cred.access_token)
    if served.extensions:  # the revocation feed says why: the broker's own answer to a revoked token
        body = assert_problem(response, 403, "insufficient_scope", rid, secrets_=(cred.access_token,))
        assert body["detail"] == "token has been revoked"
        assert served.record(rid).outcome == "revoked"
    else:  # remote validate does not tell revoked from expired or forged
        assert_problem(response, 401, "unauthorized", rid, secrets_=(cred.access_token,))


# ---- requests that cannot be turned into a scope: 400 ----------------------------------------------------------


CRAFTED = ["/records/*", "/records/a:b", "/records/%2A", "/records/%2a", "/records/P-1%3AP-2", "/records/%C3%A9"]


@pytest.mark.parametrize("path", CRAFTED)
@pytest.mark.parametrize("holder", ["read_p1", "read_any"])
def test_a_crafted_path_value_is_refused_not_widened(
    http: httpx.Client, served: Served, tokens: Tokens, path: str, holder: str
) -> None:
    cred = getattr(tokens, holder)
    response, rid = call(http, served, path, cred.access_token)
    body = assert_problem(response, 400, "invalid_request", rid, secrets_=(cred.access_token,))
    assert body["detail"].startswith("request parameter 'patient_id' cannot be used in a scope")
    record = served.record(rid)
    assert record.outcome == "invalid_request"
    assert record.agent_id == cred.agent_id  # the token was verified first: the attempt is on record by name
    assert record.required == ()


def test_a_crafted_path_without_a_token_is_401(http: httpx.Client, served: Served) -> None:
    response, rid = call(http, served, "/records/*")
    assert_problem(response, 401, "unauthorized", rid)


@pytest.mark.parametrize("query", ["patient_id=*", "patient_id=a:b", "patient_id=", "patient_id=%2A", "other=1", ""])
def test_a_crafted_or_missing_query_value_is_400(
    http: httpx.Client, served: Served, tokens: Tokens, query: str
) -> None:
    response, rid = call(http, served, f"/search?{query}", tokens.read_any.access_token)
    assert_problem(response, 400, "invalid_request", rid)


def test_a_value_in_both_path_and_query_is_ambiguous(http: httpx.Client, served: Served, tokens: Tokens) -> None:
    response, rid = call(http, served, "/records/P-1?patient_id=P-2", tokens.read_p1.access_token)
    body = assert_problem(response, 400, "invalid_request", rid)
    assert "both in the path and in the query string" in body["detail"]


# ---- routes outside the rules ---------------------------------------------------------------------------------


def test_public_routes_need_no_token(http: httpx.Client, served: Served) -> None:
    response, _ = call(http, served, "/health")
    assert response.status_code == 200
