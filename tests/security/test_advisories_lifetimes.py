"""Advisory 7: credentials that outlive their grant.

Admin tokens renewed without the secret, indefinitely; an app's tokens kept renewing after the app was deregistered.
Renewal now never extends past an absolute lifetime fixed at first issue, and deregistering an app revokes what it
holds: its app tokens, its agents' tokens (and what they delegated) and its unused launch tokens.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from security_support import Wire, bearer, claims_of, counted, refused, served, unique, wire_for

from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker

SESSION = 3  # seconds: the absolute lifetime of a renewal line in the broker below


@pytest.fixture
def short_sessions() -> Iterator[Wire]:
    settings = BrokerSettings(session_lifetime=SESSION, admin_session_lifetime=SESSION, rate_limits=False)
    with EmbeddedBroker(settings=settings) as running, wire_for(running) as w:
        yield w


def _renew_until_refused(w: Wire, token: str) -> tuple[str, int]:
    """Renew as an attacker holding only the token would, until the broker stops it; (last token, renewals)."""
    first_iat = int(claims_of(token)["iat"])
    renewals = 0
    deadline = time.monotonic() + SESSION + 3
    while time.monotonic() < deadline:
        resp = w.renew(token)
        if resp.status_code != 200:
            refused("lifetimes", resp, 401, "unauthorized", detail="token renewal failed")
            return token, renewals
        token = resp.json()["access_token"]
        assert int(claims_of(token)["exp"]) <= first_iat + SESSION  # never past the line's absolute end
        renewals += 1
        time.sleep(0.5)
    pytest.fail("renewal went on past the absolute lifetime")


def test_an_admin_token_cannot_be_renewed_forever(short_sessions: Wire) -> None:
    w = short_sessions
    _, renewals = _renew_until_refused(w, w.admin_token())
    assert renewals >= 2  # renewal itself works within the lifetime
    # Presenting the secret again starts a new session.
    fresh = served("lifetimes", w.admin_login())
    served("lifetimes", w.get("/v1/admin/apps", headers=bearer(fresh["access_token"])))


def test_agent_and_app_tokens_end_with_their_line_too(short_sessions: Wire) -> None:
    w = short_sessions
    app = w.create_app(["read:records:*"])
    _renew_until_refused(w, w.app_token(app))
    w._admin_token = None  # the operator's own session has ended meanwhile: log in again
    _renew_until_refused(w, w.mint(["read:records:P-1"]).token)
    served("lifetimes", w.app_login(app))


def test_deregistering_an_app_revokes_what_it_holds(wire: Wire) -> None:
    doomed = wire.create_app(["read:records:*"])
    bystander = wire.create_app(["read:records:*"])
    app_token = wire.app_token(doomed)
    task = unique("doomed-task")

    def launch(app_token: str) -> str:
        resp = wire.launch_token_response(
            ["read:records:*"], auth=bearer(app_token), path="/v1/app/launch-tokens", single_use=False, ttl=300
        )
        return str(served("lifetimes", resp, 201)["launch_token"])

    doomed_launch = launch(app_token)
    agent = wire.mint(["read:records:P-1"], launch_token=doomed_launch, task_id=task)
    helper = wire.mint(["read:records:P-2"], task_id=task)
    delegated = wire.delegate(agent.token, helper.agent_id, ["read:records:P-1"]).json()["access_token"]
    survivor = wire.mint(["read:records:P-3"], launch_token=launch(wire.app_token(bystander)))

    served("lifetimes", wire.client.delete(f"/v1/admin/apps/{doomed.app_id}", headers=wire.admin()))

    # The app's own token: neither renewable nor usable.
    refused("lifetimes", wire.renew(app_token), 401, "unauthorized")
    resp = wire.post(
        "/v1/app/launch-tokens",
        json={"agent_name": "a", "allowed_scope": ["read:records:P-1"]},
        headers=bearer(app_token),
    )
    refused("lifetimes", resp, 403, "insufficient_scope")
    # What its agents hold, and what they delegated, is dead.
    for token in (agent.token, delegated):
        wire.assert_invalid(token)
        refused("lifetimes", wire.renew(token), 401, "unauthorized")
    # Its launch token registers nobody any more.
    refused("lifetimes", wire.register(wire.register_body(doomed_launch, ["read:records:P-1"])), 401, "unauthorized")
    counted("lifetimes", "refused")
    # Another app's credentials are untouched.
    assert wire.is_valid(survivor.token)
    served("lifetimes", wire.renew(survivor.token))
