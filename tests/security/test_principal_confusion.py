"""A genuine token of one principal (admin, app, agent, delegated) used where another is required.

These tokens verify — they are real — so only the authorisation step can refuse them: the broker's required scopes
and app lookup, the resource side's coverage check, and the guard's gate on the verified claims of each call's
credential (same task, exactly the rendered scope).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from security_support import AUDIENCE, ISSUER, RESOURCE_SCOPE, Genuine, Wire, assert_problem, bearer, ok

from agentwrit_tools import Broker, Credential, Task, Verifier, scoped_tool
from agentwrit_tools.resource import AccessRefused, require

ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/admin/launch-tokens", {"agent_name": "x", "allowed_scope": ["read:records:*"]}),
    ("GET", "/v1/admin/apps", None),
    ("POST", "/v1/admin/apps", {"name": "confused-app", "scopes": ["read:records:*"]}),
    ("POST", "/v1/revoke", {"level": "task", "target": "confused-task"}),
    ("GET", "/v1/audit/events", None),
]
APP_ROUTE = ("POST", "/v1/app/launch-tokens", {"agent_name": "x", "allowed_scope": ["read:records:P-1"]})


def _refused(wire: Wire, token: str, routes: Sequence[tuple[str, str, dict[str, Any] | None]], status: int) -> None:
    for method, path, body in routes:
        resp = wire.client.request(method, path, json=body, headers=bearer(token))
        assert_problem(resp, status, "insufficient_scope" if status == 403 else "unauthorized")


def _nothing_happened(wire: Wire) -> None:
    feed = ok(wire.feed(limit=1000))["revocations"]
    assert ("task", "confused-task") not in [(r["level"], r["target"]) for r in feed]
    assert "confused-app" not in [a["name"] for a in ok(wire.get("/v1/admin/apps", headers=wire.admin()))["apps"]]


# ---- broker ---------------------------------------------------------------------------------------------------


def test_app_token_is_refused_on_admin_routes(wire: Wire, genuine: Genuine) -> None:
    _refused(wire, genuine.app, ADMIN_ROUTES, 403)
    _nothing_happened(wire)


def test_admin_token_is_refused_on_the_app_launch_token_route(wire: Wire, genuine: Genuine) -> None:
    _refused(wire, genuine.admin, [APP_ROUTE], 403)


def test_agent_token_is_refused_on_admin_and_app_routes(wire: Wire, genuine: Genuine) -> None:
    _refused(wire, genuine.agent, [*ADMIN_ROUTES, APP_ROUTE], 403)
    _nothing_happened(wire)


def test_delegated_token_is_refused_on_admin_and_app_routes(wire: Wire, genuine: Genuine) -> None:
    _refused(wire, genuine.delegated, [*ADMIN_ROUTES, APP_ROUTE], 403)
    _nothing_happened(wire)


@pytest.mark.parametrize("who", ["admin", "app"])
def test_admin_and_app_tokens_cannot_delegate(wire: Wire, genuine: Genuine, who: str) -> None:
    token = getattr(genuine, who)
    target = wire.mint(["read:records:P-1"]).agent_id
    scope = ["admin:audit:*"] if who == "admin" else ["app:launch-tokens:*"]
    resp = wire.delegate(token, target, scope)
    assert_problem(resp, 403, "insufficient_scope")
    events = wire.audit(event_type="delegation_attenuation_violation", limit=1000)["events"]
    assert any("non-agent" in e["detail"] for e in events)


def test_agent_token_carrying_app_scopes_is_refused_on_the_app_route(wire: Wire) -> None:
    """Even an agent the operator let register with ``app:launch-tokens:*`` is not an app: no ceiling, no launch."""
    agent = wire.mint(["app:launch-tokens:*", "app:agents:*"])
    _refused(wire, agent.token, [APP_ROUTE], 401)


def test_app_cannot_launch_an_agent_with_admin_scopes(wire: Wire) -> None:
    app = wire.create_app(["read:records:*"])
    path = "/v1/app/launch-tokens"
    for scope in (["admin:audit:*"], ["admin:revoke:*"], ["app:launch-tokens:*"], ["read:records:*", "admin:x:y"]):
        resp = wire.launch_token_response(scope, auth=bearer(wire.app_token(app)), path=path)
        assert_problem(resp, 403, "forbidden")


# ---- resource side --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "app", "delegated"])
def test_wrong_principal_is_refused_by_resource_side(
    genuine: Genuine, local_verifier: Verifier, remote_verifier: Verifier, records_url: str, who: str
) -> None:
    """Admin and app tokens verify but cover no record; the delegated token covers P-1 only."""
    token = getattr(genuine, who)
    for verifier in (local_verifier, remote_verifier):
        assert verifier.verify(token).sub  # genuine
        with pytest.raises(AccessRefused) as refused:
            require(verifier, token, RESOURCE_SCOPE, params={"patient_id": "P-2"}, access_log=None)
        assert (refused.value.status_code, refused.value.error_code) == (403, "insufficient_scope")
    resp = httpx.get(f"{records_url}/records/P-2", headers=bearer(token))
    assert resp.status_code == 403, resp.text
    assert resp.json()["error_code"] == "insufficient_scope"


# ---- the guard ------------------------------------------------------------------------------------------------


class HandsOut:
    """A minter that hands the guard a credential of its choosing (a bug, or a compromised minter)."""

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self.asked: list[list[str]] = []

    def mint(self, scope: Sequence[str], *, ttl: int | None = None) -> Credential:
        self.asked.append(list(scope))
        return self.credential


@pytest.fixture
def app_client(sec_broker: Any) -> Any:
    app = sec_broker.create_app(f"sec-guard-{secrets.token_hex(3)}", ["read:records:*"])
    with Broker(sec_broker.url, app.client_id, app.client_secret, issuer=ISSUER, audience=AUDIENCE) as client:
        yield client


def _guarded_call(client: Broker, credential: Credential, task_id: str) -> tuple[Any, list[str], HandsOut]:
    ran: list[str] = []

    @scoped_tool("read:records:{patient_id}")
    def read_record(patient_id: str, credential: Credential) -> str:
        ran.append(credential.claims.jti)
        return "secret record"

    minter = HandsOut(credential)
    with Task(client, orch_id="orch-sec", task_id=task_id, ceiling="read:records:*", minter=minter) as task:
        result = task.call(read_record, {"patient_id": "P-1"})
    return result, ran, minter


@pytest.mark.parametrize(
    ("granted", "task"),
    [
        ("read:records:*", "mine"),  # wider than the call needs
        ("read:records:P-2", "mine"),  # another record
        ("read:records:P-1", "theirs"),  # exactly the scope, but another task's agent
    ],
    ids=["wider-scope", "other-record", "other-task"],
)
def test_guard_refuses_a_credential_that_is_not_exactly_the_calls(app_client: Broker, granted: str, task: str) -> None:
    mine = f"sec-{secrets.token_hex(4)}"
    minted_for = mine if task == "mine" else f"other-{secrets.token_hex(4)}"
    credential = app_client.mint(granted, orch_id="orch-sec", task_id=minted_for)
    result, ran, minter = _guarded_call(app_client, credential, mine)
    assert minter.asked == [["read:records:P-1"]]
    assert ran == [], "the tool body ran with a credential that was not the call's"
    assert result.denied
    assert result.error_kind == "scope_mismatch"
    assert "secret record" not in str(result.content)
    assert credential.released  # the wrong credential is not left alive either
