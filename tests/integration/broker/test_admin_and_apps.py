"""Admin login, app registration and management, app login: `/v1/admin/auth`, `/v1/admin/apps*`, `/v1/app/auth`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ._wire import (
    ADMIN_SCOPES,
    APP_SCOPES,
    HEX32,
    RFC3339,
    Wire,
    assert_problem,
    bearer,
    claims_of,
    jwt_parts,
    ok,
    unique,
    walk_json,
)

# --- admin login ------------------------------------------------------------------------------------------------


def test_admin_login_issues_a_300_second_admin_token(fresh_wire: Wire) -> None:
    before = int(time.time())
    body = ok(fresh_wire.admin_login())

    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    header, claims = jwt_parts(body["access_token"])
    assert header["alg"] == "EdDSA"
    assert header["typ"] == "JWT"
    assert isinstance(header.get("kid"), str)
    assert header["kid"]
    assert claims["sub"] == "admin"
    assert set(claims["scope"]) == ADMIN_SCOPES
    assert claims["exp"] - claims["iat"] == 300
    assert before - 2 <= claims["iat"] <= int(time.time()) + 2
    assert claims["nbf"] <= claims["iat"] + 1
    assert HEX32.fullmatch(claims["jti"])


def test_admin_login_refusals(fresh_wire: Wire) -> None:
    wrong = fresh_wire.post("/v1/admin/auth", json={"secret": fresh_wire.admin_secret + "x"})
    assert_problem(wrong, 401, "unauthorized")
    assert_problem(fresh_wire.post("/v1/admin/auth", json={}), 400)
    assert_problem(fresh_wire.post("/v1/admin/auth", json={"secret": 12345}), 400)
    assert_problem(fresh_wire.post("/v1/admin/auth", json={"secret": ["x"]}), 400)
    # A prefix of the secret is not the secret.
    prefix = fresh_wire.post("/v1/admin/auth", json={"secret": fresh_wire.admin_secret[:-1]})
    assert_problem(prefix, 401, "unauthorized")


# --- app registration -------------------------------------------------------------------------------------------


def test_create_app_returns_credentials_once_with_default_ttl(wire: Wire) -> None:
    name = unique("app")
    resp = wire.post("/v1/admin/apps", json={"name": name, "scopes": ["read:data:*"]}, headers=wire.admin())
    body = ok(resp)
    assert set(body) >= {"app_id", "client_id", "client_secret", "scopes", "token_ttl"}
    assert body["scopes"] == ["read:data:*"]
    assert body["token_ttl"] == 1800
    assert body["client_id"]
    assert body["app_id"]
    assert len(body["client_secret"]) >= 16

    # The secret is shown once: neither the listing nor the single view carries it.
    listing = ok(wire.get("/v1/admin/apps", headers=wire.admin()))
    single = ok(wire.get(f"/v1/admin/apps/{body['app_id']}", headers=wire.admin()))
    for view in (listing, single):
        assert body["client_secret"] not in list(walk_json(view))
        assert not any("secret" in key.lower() for key in _keys(view)), view


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_create_app_with_token_ttl_sets_app_token_lifetime(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"], token_ttl=600)
    assert app.token_ttl == 600
    body = ok(wire.app_login(app))
    assert body["expires_in"] == 600
    claims = claims_of(body["access_token"])
    assert claims["exp"] - claims["iat"] == 600


@pytest.mark.parametrize(
    "name",
    ["Upper", "under_score", "with space", "", "dot.name", "slash/name", "ümlaut"],
)
def test_create_app_refuses_bad_names(wire: Wire, name: str) -> None:
    resp = wire.post("/v1/admin/apps", json={"name": name, "scopes": ["read:data:*"]}, headers=wire.admin())
    assert_problem(resp, 400, "invalid_request")


@pytest.mark.parametrize(
    "scopes",
    [["read:data"], ["read:data:x:y"], ["read::x"], ["*:data:x"], ["read:*:x"], ["read:data:x*"], "read:data:x"],
)
def test_create_app_refuses_malformed_scopes(wire: Wire, scopes: object) -> None:
    resp = wire.post("/v1/admin/apps", json={"name": unique("app"), "scopes": scopes}, headers=wire.admin())
    assert_problem(resp, 400, "invalid_request")


def test_create_app_refuses_bad_ttl(wire: Wire) -> None:
    for ttl in (-5, -1):
        resp = wire.post(
            "/v1/admin/apps",
            json={"name": unique("app"), "scopes": ["read:data:*"], "token_ttl": ttl},
            headers=wire.admin(),
        )
        assert_problem(resp, 400, "invalid_ttl")
    wrong_type = wire.post(
        "/v1/admin/apps",
        json={"name": unique("app"), "scopes": ["read:data:*"], "token_ttl": "long"},
        headers=wire.admin(),
    )
    assert_problem(wrong_type, 400, {"invalid_request", "invalid_ttl"})


@pytest.mark.parametrize("body", [{}, {"name": "only-name"}, {"scopes": ["read:data:*"]}, {"name": 7, "scopes": []}])
def test_create_app_refuses_missing_or_mistyped_fields(wire: Wire, body: dict[str, Any]) -> None:
    assert_problem(wire.post("/v1/admin/apps", json=body, headers=wire.admin()), 400)


def test_app_endpoints_need_an_admin_token(wire: Wire) -> None:
    body = {"name": unique("app"), "scopes": ["read:data:*"]}
    assert_problem(wire.post("/v1/admin/apps", json=body), 401, "unauthorized")
    assert_problem(wire.get("/v1/admin/apps"), 401, "unauthorized")
    basic = {"Authorization": "Basic YWRtaW46YWRtaW4="}
    assert_problem(wire.post("/v1/admin/apps", json=body, headers=basic), 401, "unauthorized")

    app = wire.create_app(["read:data:*"])
    app_token = wire.app_token(app)
    assert_problem(wire.post("/v1/admin/apps", json=body, headers=bearer(app_token)), 403, "insufficient_scope")
    assert_problem(wire.get("/v1/admin/apps", headers=bearer(app_token)), 403, "insufficient_scope")
    agent = wire.mint(["read:data:x"])
    assert_problem(wire.post("/v1/admin/apps", json=body, headers=bearer(agent.token)), 403, "insufficient_scope")
    # Nothing was created by the refused calls.
    names = {a.get("name") for a in ok(wire.get("/v1/admin/apps", headers=wire.admin()))["apps"]}
    assert body["name"] not in names


# --- app management ---------------------------------------------------------------------------------------------


def test_list_and_get_apps(wire: Wire) -> None:
    app = wire.create_app(["read:data:*", "write:data:*"])
    listing = ok(wire.get("/v1/admin/apps", headers=wire.admin()))
    assert isinstance(listing["apps"], list)
    assert listing["total"] >= len(listing["apps"]) >= 1
    mine = [a for a in listing["apps"] if a["app_id"] == app.app_id]
    assert len(mine) == 1
    assert mine[0]["client_id"] == app.client_id
    assert sorted(mine[0]["scopes"]) == sorted(app.scopes)

    single = ok(wire.get(f"/v1/admin/apps/{app.app_id}", headers=wire.admin()))
    assert single["app_id"] == app.app_id
    assert single["client_id"] == app.client_id
    assert sorted(single["scopes"]) == ["read:data:*", "write:data:*"]
    assert single["token_ttl"] == 1800


def test_unknown_app_is_404_for_get_put_delete(wire: Wire) -> None:
    for resp in (
        wire.get("/v1/admin/apps/no-such-app", headers=wire.admin()),
        wire.client.put("/v1/admin/apps/no-such-app", json={"token_ttl": 600}, headers=wire.admin()),
        wire.client.delete("/v1/admin/apps/no-such-app", headers=wire.admin()),
    ):
        assert_problem(resp, 404, "not_found")


def test_update_app_changes_ceiling_and_ttl(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    resp = wire.client.put(
        f"/v1/admin/apps/{app.app_id}",
        json={"scopes": ["read:data:*", "write:data:*"], "token_ttl": 900},
        headers=wire.admin(),
    )
    updated = ok(resp)
    assert updated["app_id"] == app.app_id
    assert sorted(updated["scopes"]) == ["read:data:*", "write:data:*"]
    assert updated["token_ttl"] == 900
    again = ok(wire.get(f"/v1/admin/apps/{app.app_id}", headers=wire.admin()))
    assert sorted(again["scopes"]) == ["read:data:*", "write:data:*"]
    assert again["token_ttl"] == 900

    # The new ceiling and lifetime govern what the app gets from now on.
    login = ok(wire.app_login(app))
    assert login["expires_in"] == 900
    lt = wire.launch_token_response(["write:data:x"], auth=bearer(login["access_token"]), path="/v1/app/launch-tokens")
    assert lt.status_code == 201, lt.text


def test_update_app_refuses_bad_input_and_keeps_state(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    path = f"/v1/admin/apps/{app.app_id}"
    assert_problem(wire.client.put(path, json={"scopes": ["nonsense"]}, headers=wire.admin()), 400, "invalid_request")
    assert_problem(wire.client.put(path, json={"token_ttl": -3}, headers=wire.admin()), 400, "invalid_ttl")
    assert_problem(wire.client.put(path, json={"scopes": "read:data:*"}, headers=wire.admin()), 400)
    assert_problem(wire.client.put(path, json={"token_ttl": 600}), 401, "unauthorized")
    current = ok(wire.get(path, headers=wire.admin()))
    assert current["scopes"] == ["read:data:*"]
    assert current["token_ttl"] == 1800


def test_deregister_app_makes_it_inactive_and_stops_logins(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    body = ok(wire.client.delete(f"/v1/admin/apps/{app.app_id}", headers=wire.admin()))
    assert body["app_id"] == app.app_id
    assert body["status"] == "inactive"
    assert RFC3339.fullmatch(body["deregistered_at"]), body
    assert_problem(wire.app_login(app), 401, "unauthorized")


# --- app login --------------------------------------------------------------------------------------------------


def test_app_login_issues_app_token_with_the_three_app_scopes(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    body = ok(wire.app_login(app))
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert set(body["scopes"]) == APP_SCOPES
    assert len(body["scopes"]) == 3
    claims = claims_of(body["access_token"])
    assert claims["sub"] == f"app:{app.app_id}"
    assert set(claims["scope"]) == APP_SCOPES
    assert claims["exp"] - claims["iat"] == 1800
    assert HEX32.fullmatch(claims["jti"])


def test_app_login_failures_are_indistinguishable(wire: Wire) -> None:
    app = wire.create_app(["read:data:*"])
    wrong_secret = assert_problem(wire.app_login(app, secret="not-the-secret"), 401, "unauthorized")
    unknown = wire.post("/v1/app/auth", json={"client_id": "no-such-client", "client_secret": "whatever"})
    unknown_body = assert_problem(unknown, 401, "unauthorized")
    assert wrong_secret["detail"] == unknown_body["detail"]
    assert "authentication failed" in wrong_secret["detail"].lower()


@pytest.mark.parametrize(
    "body",
    [{}, {"client_id": "x"}, {"client_secret": "x"}, {"client_id": 1, "client_secret": 2}, {"client_id": None}],
)
def test_app_login_refuses_missing_or_mistyped_fields(wire: Wire, body: dict[str, Any]) -> None:
    assert_problem(wire.post("/v1/app/auth", json=body), 400)
