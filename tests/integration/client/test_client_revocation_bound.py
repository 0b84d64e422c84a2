"""The revocation bound, tested: a verifier that did not cause a revocation refuses the token once
``revocation_bound`` seconds have passed since the revocation — locally (JWKS + feed) and remotely (cached
validate answers) alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from client_helpers import new_app
from support import feed_reader

from agentwrit_tools import AsyncVerifier, Broker, Credential, TokenInvalid, Verifier

BOUND = 0.5


@pytest.fixture
def minter(any_broker: Any) -> Iterator[Broker]:
    app = new_app(any_broker)
    with Broker(any_broker.url, app.client_id, app.client_secret, admin_secret=any_broker.admin_secret) as broker:
        yield broker


@pytest.fixture
def verifier(any_broker: Any) -> Iterator[Verifier]:
    with Verifier(any_broker.url, revocation_bound=BOUND, **feed_reader(any_broker)) as v:
        yield v


def _refused_after_bound(verifier: Verifier, token: str, revoke: Callable[[], object]) -> None:
    verifier.verify(token)  # warm: keys fetched, feed synced (or answer cached) just now
    revoke()
    revoked_at = time.monotonic()  # within the bound the token may still pass: not asserted
    time.sleep(max(0.0, revoked_at + BOUND - time.monotonic()) + 0.01)
    with pytest.raises(TokenInvalid):
        verifier.verify(token)


def test_a_release_elsewhere_is_seen_within_the_bound(minter: Broker, verifier: Verifier, extensions: bool) -> None:
    cred = minter.mint("read:data:b1", orch_id="o", task_id="t-bound")
    _refused_after_bound(verifier, cred.access_token, cred.release)
    assert verifier.verification_mode == ("local" if extensions else "remote")


@pytest.mark.parametrize("level", ["token", "agent", "task", "chain"])
def test_an_operator_revocation_is_seen_within_the_bound(minter: Broker, verifier: Verifier, level: str) -> None:
    task = f"t-bound-{level}-{time.monotonic_ns()}"
    root = minter.mint("read:data:*", orch_id="o", task_id=task)
    other = minter.mint("read:data:1", orch_id="o", task_id=task)
    delegated = root.delegate(other, "read:data:1")
    probe: Credential = delegated if level == "chain" else root
    target = {"token": root.claims.jti, "agent": root.agent_id, "task": task, "chain": root.agent_id}[level]
    _refused_after_bound(verifier, probe.access_token, lambda: minter.admin.revoke(level, target))  # type: ignore[arg-type]


def test_a_cascade_is_seen_within_the_bound(minter: Broker, verifier: Verifier, extensions: bool) -> None:
    if not extensions:
        pytest.skip("cascade revocation is an extension; a reference broker keeps delegated tokens alive")
    parent = minter.mint("read:data:*", orch_id="o", task_id="t-cascade")
    child = minter.mint("read:data:5", orch_id="o", task_id="t-cascade")
    delegated = parent.delegate(child, "read:data:5")
    _refused_after_bound(verifier, delegated.access_token, parent.release)


def test_bound_zero_sees_revocations_at_once(any_broker: Any, minter: Broker) -> None:
    cred = minter.mint("read:data:b0", orch_id="o", task_id="t-bound-0")
    with Verifier(any_broker.url, revocation_bound=0, **feed_reader(any_broker)) as strict_bound:
        strict_bound.verify(cred.access_token)
        cred.release()
        with pytest.raises(TokenInvalid):
            strict_bound.verify(cred.access_token)


def test_local_verification_makes_no_round_trip_inside_the_bound(any_broker: Any, minter: Broker) -> None:
    if not any_broker.settings.extensions:
        pytest.skip("remote mode always asks the broker")
    cred = minter.mint("read:data:fast", orch_id="o", task_id="t-fast")
    with Verifier(any_broker.url, revocation_bound=60, **feed_reader(any_broker)) as v:
        v.verify(cred.access_token)
        before = _requests_seen(any_broker)
        for _ in range(50):
            v.verify(cred.access_token)
        assert _requests_seen(any_broker) == before
    cred.release()


def _requests_seen(running: Any) -> float:
    with Broker(running.url) as probe:
        text = probe.metrics()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("agentwrit_request_duration_seconds_count") and "metrics" not in line
    )


@pytest.mark.anyio
async def test_async_verifier_honours_the_bound(any_broker: Any, minter: Broker) -> None:
    import anyio

    cred = minter.mint("read:data:ab", orch_id="o", task_id="t-async-bound")
    async with AsyncVerifier(any_broker.url, revocation_bound=BOUND, **feed_reader(any_broker)) as v:
        await v.verify(cred.access_token)
        cred.release()
        await anyio.sleep(BOUND + 0.01)
        with pytest.raises(TokenInvalid):
            await v.verify(cred.access_token)
