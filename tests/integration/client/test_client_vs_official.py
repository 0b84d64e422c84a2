"""The same flows with the official ``agentwrit`` 0.3.0 client and ours, against one broker: same outcomes.

Compared: granted scopes, validity after release, refusal of widening (mint and delegation), delegation chains,
and that each side accepts the other's tokens. Run with extensions on and off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import agentwrit
import pytest
from client_helpers import new_app

from agentwrit_tools import Broker, ScopeViolation, TokenInvalid


@pytest.fixture
def pair(any_broker: Any) -> Iterator[tuple[agentwrit.AgentWritApp, Broker]]:
    app = new_app(any_broker, ["read:data:*", "write:data:*"])
    official = agentwrit.AgentWritApp(any_broker.url, app.client_id, app.client_secret)
    ours = Broker(any_broker.url, app.client_id, app.client_secret)
    try:
        yield official, ours
    finally:
        official.close()
        ours.close()


def _ours_valid(broker: Broker, token: str) -> bool:
    try:
        broker.validate(token)
    except TokenInvalid:
        return False
    return True


def test_granted_scopes_agree(pair: tuple[agentwrit.AgentWritApp, Broker]) -> None:
    official, ours = pair
    agent = official.create_agent("orch", "task-cmp", ["read:data:c1"])
    cred = ours.mint(["read:data:c1"], orch_id="orch", task_id="task-cmp")
    official_claims = official.validate(agent.access_token).claims
    assert official_claims is not None
    assert list(official_claims.scope) == agent.scope == ["read:data:c1"]
    assert list(cred.claims.scope) == ["read:data:c1"]
    assert (official_claims.task_id, official_claims.orch_id) == (cred.claims.task_id, cred.claims.orch_id)
    # Each side accepts the other's token, with the same claims.
    assert ours.verify(agent.access_token).jti == official_claims.jti
    ours_seen_by_official = official.validate(cred.access_token)
    assert ours_seen_by_official.valid
    assert ours_seen_by_official.claims is not None
    assert ours_seen_by_official.claims.jti == cred.claims.jti
    agent.release()
    cred.release()


def test_validity_after_release_agrees(pair: tuple[agentwrit.AgentWritApp, Broker]) -> None:
    official, ours = pair
    agent = official.create_agent("orch", "task-rel", ["read:data:r1"])
    cred = ours.mint("read:data:r1", orch_id="orch", task_id="task-rel")
    agent.release()
    cred.release()
    outcomes = {
        "official token, official validate": official.validate(agent.access_token).valid,
        "official token, our validate": _ours_valid(ours, agent.access_token),
        "our token, official validate": official.validate(cred.access_token).valid,
        "our token, our validate": _ours_valid(ours, cred.access_token),
    }
    assert set(outcomes.values()) == {False}, outcomes
    agent.release()  # idempotent on both sides
    assert cred.release() is False


def test_widening_is_refused_by_both(pair: tuple[agentwrit.AgentWritApp, Broker]) -> None:
    official, ours = pair
    with pytest.raises(agentwrit.AuthorizationError) as theirs:
        official.create_agent("orch", "task-wide", ["admin:data:*"])
    with pytest.raises(ScopeViolation) as mine:
        ours.mint("admin:data:*", orch_id="orch", task_id="task-wide")
    assert theirs.value.status_code == mine.value.status_code == 403
    assert theirs.value.problem.error_code == mine.value.error_code

    narrow_agent = official.create_agent("orch", "task-wide", ["read:data:n1"])
    narrow_cred = ours.mint("read:data:n1", orch_id="orch", task_id="task-wide")
    with pytest.raises(agentwrit.AuthorizationError) as theirs_deleg:
        narrow_agent.delegate(narrow_cred.agent_id, ["read:data:*"])
    with pytest.raises(ScopeViolation) as mine_deleg:
        narrow_cred.delegate(narrow_agent.agent_id, "read:data:*")
    assert theirs_deleg.value.problem.error_code == mine_deleg.value.error_code == "scope_violation"
    narrow_agent.release()
    narrow_cred.release()


def test_delegation_chains_agree(pair: tuple[agentwrit.AgentWritApp, Broker]) -> None:
    official, ours = pair
    official_parent = official.create_agent("orch", "task-chain", ["read:data:*"])
    our_parent = ours.mint("read:data:*", orch_id="orch", task_id="task-chain")
    our_child = ours.mint("read:data:d1", orch_id="orch", task_id="task-chain")
    theirs = official_parent.delegate(our_child.agent_id, ["read:data:d1"])
    mine = our_parent.delegate(our_child, "read:data:d1")
    their_claims = ours.verify(theirs.access_token)
    assert [r.agent for r in theirs.delegation_chain] == [official_parent.agent_id]
    assert [r.agent for r in mine.claims.delegation_chain] == [our_parent.agent_id]
    assert their_claims.scope == mine.claims.scope == ("read:data:d1",)
    assert their_claims.sub == mine.claims.sub == our_child.agent_id
    for cred in (our_parent, our_child, mine):
        cred.release()
    official_parent.release()


def test_what_ours_checks_that_the_official_client_does_not(pair: tuple[agentwrit.AgentWritApp, Broker]) -> None:
    """The official client reports the scope it asked for; ours reports the verified token's."""
    official, ours = pair
    agent = official.create_agent("orch", "task-gate", ["read:data:g1", "read:data:g1"])
    assert agent.scope == ["read:data:g1", "read:data:g1"]  # echoes the request verbatim
    cred = ours.mint(["read:data:g1", "read:data:g1"], orch_id="orch", task_id="task-gate")
    assert cred.scope == ("read:data:g1",)  # what the signed token says
    agent.release()
    cred.release()
