"""The Bearer rules on every protected endpoint: missing or non-Bearer → 401; bad signature, expired or malformed
→ 401 `token verification failed`; revoked → 403; a valid token without the endpoint's scope → 403.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ._wire import RENEW_FAILED, Wire, assert_problem, bearer, forge, jwt_parts, ok
from .conftest import StartBroker

VERIFY_FAILED = "token verification failed"

# (method, path, body, who may call it)
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/admin/apps", {"name": "bearer-rules", "scopes": ["read:data:*"]}),
    ("GET", "/v1/admin/apps", None),
    ("GET", "/v1/admin/apps/some-app", None),
    ("PUT", "/v1/admin/apps/some-app", {"token_ttl": 600}),
    ("DELETE", "/v1/admin/apps/some-app", None),
    ("POST", "/v1/admin/launch-tokens", {"agent_name": "a", "allowed_scope": ["read:data:x"]}),
    ("POST", "/v1/revoke", {"level": "task", "target": "bearer-rules-task"}),
    ("GET", "/v1/audit/events", None),
]
APP_ROUTES = [("POST", "/v1/app/launch-tokens", {"agent_name": "a", "allowed_scope": ["read:data:x"]})]
ANY_TOKEN_ROUTES = [
    ("POST", "/v1/token/release", None),
    (
        "POST",
        "/v1/delegate",
        {"delegate_to": "spiffe://agentwrit.local/agent/o/t/0123456789abcdef", "scope": ["a:b:c"]},
    ),
]
ALL_ROUTES = ADMIN_ROUTES + APP_ROUTES + ANY_TOKEN_ROUTES + [("POST", "/v1/token/renew", None)]


def _call(wire: Wire, route: tuple[str, str, dict[str, Any] | None], headers: dict[str, str]) -> Any:
    method, path, body = route
    return wire.client.request(method, path, json=body, headers=headers)


def _ids(routes: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{m} {p}" for m, p, _ in routes]


@pytest.mark.parametrize("route", ALL_ROUTES, ids=_ids(ALL_ROUTES))
def test_missing_or_non_bearer_authorization_is_401(wire: Wire, route: tuple[str, str, Any]) -> None:
    for headers in ({}, {"Authorization": "Basic YWRtaW46eA=="}, {"Authorization": "Token abc"}, {"Authorization": ""}):
        assert_problem(_call(wire, route, headers), 401, "unauthorized")


@pytest.mark.parametrize("route", ALL_ROUTES, ids=_ids(ALL_ROUTES))
def test_bad_tokens_are_401_token_verification_failed(wire: Wire, route: tuple[str, str, Any]) -> None:
    header, payload = jwt_parts(wire.admin_token())
    expected = RENEW_FAILED if route[1] == "/v1/token/renew" else VERIFY_FAILED
    for token in (
        "garbage",
        "a.b.c",
        forge({**header, "alg": "none"}, payload),
        forge({**header, "alg": "HS256"}, payload, hs256_key=b"k"),
        wire.admin_token()[:-4] + "AAAA",
    ):
        assert_problem(_call(wire, route, bearer(token)), 401, "unauthorized", detail=expected)


@pytest.mark.parametrize("route", ADMIN_ROUTES + APP_ROUTES, ids=_ids(ADMIN_ROUTES + APP_ROUTES))
def test_a_valid_token_without_the_scope_is_403(wire: Wire, route: tuple[str, str, Any]) -> None:
    agent = wire.mint(["read:data:x"])
    assert_problem(_call(wire, route, bearer(agent.token)), 403, "insufficient_scope")
    wrong_role = wire.admin() if route in APP_ROUTES else bearer(wire.app_token(wire.create_app(["read:data:*"])))
    assert_problem(_call(wire, route, wrong_role), 403, "insufficient_scope")


def test_revoked_admin_token_is_403_everywhere(start_broker: StartBroker) -> None:
    with start_broker() as w:
        doomed = ok(w.admin_login())["access_token"]
        ok(w.revoke("token", jwt_parts(doomed)[1]["jti"]))
        for route in ADMIN_ROUTES:
            assert_problem(_call(w, route, bearer(doomed)), 403, "insufficient_scope")
        assert_problem(w.renew(doomed), 401, "unauthorized", detail=RENEW_FAILED)
        # The other admin token is untouched.
        assert ok(w.get("/v1/admin/apps", headers=w.admin()))["total"] >= 0


def test_expired_admin_token_is_401_token_verification_failed(start_broker: StartBroker) -> None:
    from agentwrit_tools.broker import BrokerSettings

    # exp is whole seconds from a whole-second iat, so a 1 s token can be dead on arrival on a busy machine.
    with start_broker(settings=BrokerSettings(admin_token_ttl=3)) as w:
        token = ok(w.admin_login())["access_token"]
        assert ok(w.get("/v1/admin/apps", headers=bearer(token)))["total"] == 0
        time.sleep(4.2)
        for route in ADMIN_ROUTES:
            assert_problem(_call(w, route, bearer(token)), 401, "unauthorized", detail=VERIFY_FAILED)
