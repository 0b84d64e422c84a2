"""Credential lifecycle against the real embedded broker, with extensions on and off (sync and async)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import feed_reader

from agentwrit_tools import (
    AsyncBroker,
    Broker,
    CredentialReleased,
    NotFound,
    ScopeError,
    ScopeViolation,
    TokenInvalid,
    Unauthorized,
)


@pytest.fixture
def client(any_broker: Any, app: Any) -> Iterator[Broker]:
    with Broker(any_broker.url, app.client_id, app.client_secret) as broker:
        yield broker


def _dead(broker: Broker, token: str) -> bool:
    try:
        broker.validate(token)
    except TokenInvalid:
        return True
    return False


def test_mint_gives_exactly_the_requested_scope_from_verified_claims(client: Broker, extensions: bool) -> None:
    cred = client.mint(["read:data:c-1", "write:data:c-1"], orch_id="orch-a", task_id="task-a", ttl=60)
    assert set(cred.claims.scope) == {"read:data:c-1", "write:data:c-1"}
    assert cred.claims.sub == cred.agent_id
    assert cred.agent_id.startswith("spiffe://agentwrit.local/agent/orch-a/task-a/")
    assert (cred.claims.orch_id, cred.claims.task_id) == ("orch-a", "task-a")
    assert len(cred.claims.jti) == 32
    assert 55 <= cred.claims.exp - time.time() <= 61
    assert client.verification_mode == ("local" if extensions else "remote")
    assert client.verify(cred.access_token) == client.validate(cred.access_token)
    cred.release()


def test_release_kills_the_token_and_is_idempotent(client: Broker) -> None:
    cred = client.mint("read:data:r", orch_id="o", task_id="t")
    token = cred.access_token
    assert cred.release() is True
    assert cred.release() is False
    assert _dead(client, token)
    with pytest.raises(TokenInvalid):
        client.verify(token)
    with pytest.raises(CredentialReleased):
        cred.renew()
    with pytest.raises(CredentialReleased):
        cred.delegate("spiffe://agentwrit.local/agent/o/t/x", "read:data:r")


def test_with_releases_on_exit_and_on_error(client: Broker) -> None:
    with client.mint("read:data:w", orch_id="o", task_id="t") as cred:
        token = cred.access_token
    assert _dead(client, token)
    held: list[str] = []

    def failing_tool() -> None:
        with client.mint("read:data:w", orch_id="o", task_id="t") as cred:
            held.append(cred.access_token)
            raise RuntimeError("tool failed")

    with pytest.raises(RuntimeError):
        failing_tool()
    assert _dead(client, held[0])


def test_renew_swaps_the_token_and_kills_the_old_one(client: Broker) -> None:
    cred = client.mint("read:data:n", orch_id="o", task_id="t", ttl=120)
    old_token, old = cred.access_token, cred.claims
    cred.renew()
    assert cred.claims.jti != old.jti
    assert (cred.claims.sub, cred.claims.scope) == (old.sub, old.scope)
    assert _dead(client, old_token)
    assert client.verify(cred.access_token).jti == cred.claims.jti
    cred.release()


def test_delegation_narrows_and_widening_is_refused(client: Broker, extensions: bool) -> None:
    parent = client.mint(["read:data:*"], orch_id="o", task_id="t-deleg")
    child = client.mint(["read:data:9"], orch_id="o", task_id="t-deleg")
    delegated = parent.delegate(child, "read:data:9", ttl=30)
    assert delegated.agent_id == child.agent_id
    assert delegated.claims.scope == ("read:data:9",)
    assert delegated.claims.chain_root == parent.agent_id
    assert delegated.claims.depth == 1
    assert delegated.claims.chain_hash
    assert client.verify(delegated.access_token).delegation_chain == delegated.claims.delegation_chain
    with pytest.raises(ScopeViolation):
        child.delegate(parent, "read:data:*")
    with pytest.raises(ScopeViolation):
        parent.delegate(child, "write:data:9")
    with pytest.raises(NotFound):
        parent.delegate("spiffe://agentwrit.local/agent/o/t/0000000000000000", "read:data:9")
    parent.release()
    if extensions:  # cascade: the delegated token dies with its delegator
        assert _dead(client, delegated.access_token)
    for cred in (child, delegated):
        cred.release()


def test_minting_beyond_the_app_ceiling_is_refused(client: Broker) -> None:
    with pytest.raises(ScopeViolation) as info:
        client.mint("admin:data:x", orch_id="o", task_id="t")
    assert info.value.status_code == 403
    assert info.value.error_code == "forbidden"
    assert info.value.problem.instance == "/v1/app/launch-tokens"
    with pytest.raises(ScopeError):
        client.mint("read:data", orch_id="o", task_id="t")


def test_the_task_ceiling_is_enforced_by_the_broker(client: Broker) -> None:
    launcher = client.task_launcher(["read:data:p-1", "read:data:p-2"], orch_id="o", task_id="t-ceiling", ttl=120)
    creds = [
        launcher.mint("read:data:p-1", ttl=20),
        launcher.mint("read:data:p-2", ttl=20),
        launcher.mint("read:data:p-1"),
    ]
    assert [c.scope for c in creds] == [("read:data:p-1",), ("read:data:p-2",), ("read:data:p-1",)]
    assert all(c.claims.task_id == "t-ceiling" for c in creds)
    assert 15 <= creds[0].claims.exp - time.time() <= 21
    with pytest.raises(ScopeViolation) as info:
        launcher.mint("read:data:p-3")
    assert info.value.error_code == "scope_violation"
    for cred in creds:
        cred.release()


def test_a_given_launch_token_is_used_instead_of_the_app_session(any_broker: Any) -> None:
    with Broker(any_broker.url, admin_secret=any_broker.admin_secret) as operator:
        launch = operator.admin.create_launch_token("ops-agent", ["read:data:*"], max_ttl=60)
        assert launch.launch_token not in repr(launch)
        cred = operator.mint("read:data:l", orch_id="o", task_id="t", launch_token=launch.launch_token, ttl=60)
        assert cred.scope == ("read:data:l",)
        with pytest.raises(Unauthorized):  # single use
            operator.mint("read:data:l", orch_id="o", task_id="t", launch_token=launch.launch_token)
        cred.release()


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"])
def test_garbage_tokens_are_invalid(client: Broker, token: str) -> None:
    with pytest.raises(TokenInvalid):
        client.verify(token)


def test_a_verifier_with_only_the_url_verifies_remotely(any_broker: Any, client: Broker) -> None:
    """The revocation feed is for apps and operators: with the URL alone there is no feed to read, so every
    verification asks the broker (never less strict, only slower)."""
    from agentwrit_tools import Verifier

    cred = client.mint("read:data:v", orch_id="o", task_id="t")
    with Verifier(any_broker.url) as verifier:
        assert verifier.verify(cred.access_token).jti == cred.claims.jti
        assert verifier.verification_mode == "remote"
    cred.release()


def test_a_verifier_with_an_app_of_its_own_verifies_locally(any_broker: Any, client: Broker, extensions: bool) -> None:
    from agentwrit_tools import Verifier

    cred = client.mint("read:data:v", orch_id="o", task_id="t")
    with Verifier(any_broker.url, **feed_reader(any_broker)) as verifier:
        assert verifier.verify(cred.access_token).jti == cred.claims.jti
        assert verifier.verification_mode == ("local" if extensions else "remote")
    cred.release()
    with (
        Verifier(any_broker.url, **feed_reader(any_broker), revocation_bound=0) as verifier,
        pytest.raises(TokenInvalid),
    ):
        verifier.verify(cred.access_token)


def test_wrong_app_secret_is_unauthorized(any_broker: Any, app: Any) -> None:
    with Broker(any_broker.url, app.client_id, "not-the-secret") as broker, pytest.raises(Unauthorized):
        broker.mint("read:data:x", orch_id="o", task_id="t")


@pytest.mark.anyio
async def test_async_lifecycle(any_broker: Any, app: Any, extensions: bool) -> None:
    async with AsyncBroker(any_broker.url, app.client_id, app.client_secret) as broker:
        async with broker.mint("read:data:*", orch_id="o", task_id="t-async", ttl=60) as parent:
            child = await broker.mint("read:data:3", orch_id="o", task_id="t-async")
            assert child.scope == ("read:data:3",)
            delegated = await parent.delegate(child, "read:data:3")
            assert (await broker.verify(delegated.access_token)).sub == child.agent_id
            old = parent.access_token
            await parent.renew()
            with pytest.raises(TokenInvalid):
                await broker.validate(old)
            with pytest.raises(ScopeViolation):
                await broker.mint("admin:data:x", orch_id="o", task_id="t")
            launcher = broker.task_launcher("read:data:*", orch_id="o", task_id="t-async-2", ttl=60)
            scoped = await launcher.mint("read:data:4")
            assert scoped.scope == ("read:data:4",)
        assert parent.released
        with pytest.raises(TokenInvalid):
            await broker.validate(parent.access_token)
        assert broker.verification_mode == ("local" if extensions else "remote")
        for cred in (child, delegated, scoped):
            await cred.release()
        with pytest.raises(CredentialReleased):
            await child.renew()
