"""The official `agentwrit==0.3.0` Python client, unchanged, driving our embedded broker.

If this file passes, an application written against the reference AgentWrit broker works against ours. Errors
are checked as that client surfaces them: its exception class and the RFC 7807 fields it parses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from agentwrit import (
    Agent,
    AgentWritApp,
    AgentWritError,
    AuthenticationError,
    AuthorizationError,
    ProblemResponseError,
)
from agentwrit.models import ProblemDetail


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def app(broker: Any) -> Iterator[AgentWritApp]:
    """An app on the session broker with a ceiling of two resources, used through the official client."""
    registered = broker.create_app(_name("compat"), ["read:data:*", "write:notes:*"])
    client = AgentWritApp(broker.url, registered.client_id, registered.client_secret, timeout=30.0)
    yield client
    client.close()


def _assert_problem(problem: ProblemDetail, status: int, code: str, instance: str, title: str) -> None:
    assert problem.status == status
    assert problem.error_code == code
    assert problem.type == f"urn:agentwrit:error:{code}"
    assert problem.title == title
    assert problem.instance == instance
    assert problem.detail
    assert problem.request_id


def test_agent_lifecycle(app: AgentWritApp) -> None:
    task = _name("task")
    agent = app.create_agent("orch-compat", task, ["read:data:customer-1"])
    assert agent.agent_id.startswith("spiffe://agentwrit.local/agent/orch-compat/")
    assert agent.agent_id.split("/")[-2] == task
    assert agent.expires_in == 300

    result = app.validate(agent.access_token)
    assert result.valid is True
    assert result.claims is not None
    assert result.claims.sub == agent.agent_id
    assert result.claims.scope == ["read:data:customer-1"]
    assert result.claims.task_id == task
    assert result.claims.orch_id == "orch-compat"
    assert len(result.claims.jti) == 32
    assert result.claims.delegation_chain is None

    old_token = agent.access_token
    agent.renew()
    assert agent.access_token != old_token
    assert agent.expires_in == 300
    renewed = app.validate(agent.access_token)
    assert renewed.valid is True
    assert renewed.claims is not None
    assert renewed.claims.sub == agent.agent_id
    dead = app.validate(old_token)
    assert dead.valid is False
    assert dead.error == "token is invalid or expired"

    released_token = agent.access_token
    agent.release()
    assert app.validate(released_token).valid is False
    agent.release()  # the client makes a second release a no-op

    # The client refuses locally; the broker refuses too when asked directly with the released token.
    with pytest.raises(AgentWritError):
        agent.renew()
    stale = Agent(app, agent.agent_id, released_token, 300, agent.scope, agent.task_id, agent.orch_id)
    with pytest.raises(AuthenticationError) as refused:
        stale.renew()
    assert refused.value.status_code == 401
    _assert_problem(refused.value.problem, 401, "unauthorized", "/v1/token/renew", "Unauthorized")
    assert refused.value.problem.detail == "token renewal failed"

    # Releasing an already-released token is a 403 from the broker.
    with pytest.raises(AuthorizationError) as again:
        Agent(app, agent.agent_id, released_token, 300, agent.scope, agent.task_id, agent.orch_id).release()
    assert again.value.status_code == 403
    assert again.value.problem.instance == "/v1/token/release"


def test_delegation_narrow_equal_and_widening(app: AgentWritApp) -> None:
    task = _name("task")
    lead = app.create_agent("orch-compat", task, ["read:data:*"])
    helper = app.create_agent("orch-compat", _name("task"), ["write:notes:n1"])

    narrow = lead.delegate(helper.agent_id, ["read:data:customer-7"])
    assert narrow.expires_in == 60
    assert [r.agent for r in narrow.delegation_chain] == [lead.agent_id]
    assert narrow.delegation_chain[0].scope == ["read:data:*"]
    checked = app.validate(narrow.access_token)
    assert checked.valid is True
    assert checked.claims is not None
    assert checked.claims.sub == helper.agent_id
    assert checked.claims.scope == ["read:data:customer-7"]
    assert checked.claims.task_id == task
    assert checked.claims.chain_hash is not None
    assert len(checked.claims.chain_hash) == 64

    equal = lead.delegate(helper.agent_id, ["read:data:*"], ttl=30)
    assert equal.expires_in == 30
    assert app.validate(equal.access_token).valid is True

    with pytest.raises(AuthorizationError) as widened:
        lead.delegate(helper.agent_id, ["write:notes:n1"])
    assert widened.value.status_code == 403
    _assert_problem(widened.value.problem, 403, "scope_violation", "/v1/delegate", "Forbidden")

    with pytest.raises(ProblemResponseError) as unknown:
        lead.delegate("spiffe://agentwrit.local/agent/orch-compat/nobody/0123456789abcdef", ["read:data:x"])
    assert unknown.value.status_code == 404
    _assert_problem(unknown.value.problem, 404, "not_found", "/v1/delegate", "Not Found")


def test_chain_of_three(app: AgentWritApp) -> None:
    task = _name("task")
    a = app.create_agent("orch-compat", task, ["read:data:*", "write:notes:*"])
    b, c, d = (app.create_agent("orch-compat", _name("task"), ["write:notes:x"]) for _ in range(3))

    to_b = a.delegate(b.agent_id, ["read:data:*"])
    # The client's pattern for passing authority on: the delegate acts with the token it was given.
    b_holding = Agent(app, b.agent_id, to_b.access_token, to_b.expires_in, ["read:data:*"], task, "orch-compat")
    to_c = b_holding.delegate(c.agent_id, ["read:data:r1"])
    c_holding = Agent(app, c.agent_id, to_c.access_token, to_c.expires_in, ["read:data:r1"], task, "orch-compat")
    to_d = c_holding.delegate(d.agent_id, ["read:data:r1"])

    assert [r.agent for r in to_d.delegation_chain] == [a.agent_id, b.agent_id, c.agent_id]
    result = app.validate(to_d.access_token)
    assert result.valid is True
    assert result.claims is not None
    assert result.claims.sub == d.agent_id
    assert result.claims.delegation_chain is not None
    assert [r.agent for r in result.claims.delegation_chain] == [a.agent_id, b.agent_id, c.agent_id]
    assert [r.scope for r in result.claims.delegation_chain] == [
        ["read:data:*", "write:notes:*"],
        ["read:data:*"],
        ["read:data:r1"],
    ]
    hashes = set()
    for token in (to_b, to_c, to_d):
        claims = app.validate(token.access_token).claims
        assert claims is not None
        hashes.add(claims.chain_hash)
    assert len(hashes) == 3

    with pytest.raises(AuthorizationError) as widened:
        c_holding.delegate(d.agent_id, ["read:data:*"])
    assert widened.value.problem.error_code == "scope_violation"


def test_scope_over_the_app_ceiling_is_refused(app: AgentWritApp) -> None:
    with pytest.raises(AuthorizationError) as refused:
        app.create_agent("orch-compat", _name("task"), ["delete:data:everything"])
    assert refused.value.status_code == 403
    _assert_problem(refused.value.problem, 403, "forbidden", "/v1/app/launch-tokens", "Forbidden")
    assert "read:data:*" in refused.value.problem.detail


def test_wrong_app_credentials_are_refused(broker: Any) -> None:
    registered = broker.create_app(_name("compat"), ["read:data:*"])
    client = AgentWritApp(broker.url, registered.client_id, "not-the-secret", timeout=30.0)
    try:
        with pytest.raises(AuthenticationError) as refused:
            client.create_agent("orch-compat", _name("task"), ["read:data:x"])
        _assert_problem(refused.value.problem, 401, "unauthorized", "/v1/app/auth", "Unauthorized")
    finally:
        client.close()


def test_validate_garbage_and_health(app: AgentWritApp) -> None:
    for garbage in ("garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."):
        result = app.validate(garbage)
        assert result.valid is False
        assert result.claims is None
        assert result.error == "token is invalid or expired"

    health = app.health()
    assert health.status == "ok"
    assert health.version == "2.0.0"
    assert health.db_connected is True
    assert isinstance(health.uptime, int)
    assert health.audit_events_count > 0
