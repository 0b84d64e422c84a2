"""Concurrency against a broker of the test's own: one app login for a burst of mints, no shared credentials.

Logins are counted from the broker's audit log (``app_authenticated`` events), not by mocking.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentwrit_tools import AsyncBroker, AsyncCredential, Broker, Credential, TokenInvalid

N = 100


@pytest.fixture(params=[True, False], ids=["extensions-on", "extensions-off"])
def own_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker(db_path=tmp_path / "broker.db", extensions=request.param) as running:
        yield running


def _logins(running: Any) -> int:
    with Broker(running.url, admin_secret=running.admin_secret) as operator:
        return len(list(operator.admin.iter_audit_events(event_type="app_authenticated")))


def _all_dead(running: Any, creds: list[Credential] | list[AsyncCredential]) -> bool:
    with Broker(running.url) as checker:
        for cred in creds:
            try:
                checker.validate(cred.access_token)
            except TokenInvalid:
                continue
            return False
    return True


@pytest.mark.anyio
async def test_a_hundred_concurrent_async_mints_log_in_once(own_broker: Any) -> None:
    app = own_broker.create_app("burst", ["read:data:*"])
    creds: list[AsyncCredential] = []
    async with AsyncBroker(own_broker.url, app.client_id, app.client_secret) as broker:

        async def one(i: int) -> None:
            creds.append(await broker.mint(f"read:data:item-{i}", orch_id="o", task_id=f"t-{i}", ttl=60))

        async with anyio.create_task_group() as tg:
            for i in range(N):
                tg.start_soon(one, i)

        assert len(creds) == N
        assert len({c.claims.jti for c in creds}) == N
        assert len({c.agent_id for c in creds}) == N
        assert {c.scope for c in creds} == {(f"read:data:item-{i}",) for i in range(N)}

        async with anyio.create_task_group() as tg:
            for cred in creds:
                tg.start_soon(cred.release)
    assert all(c.released for c in creds)
    assert _logins(own_broker) == 1
    assert _all_dead(own_broker, creds)


def test_fifty_threads_share_one_login(own_broker: Any) -> None:
    app = own_broker.create_app("threads", ["read:data:*"])
    creds: list[Credential] = []
    errors: list[BaseException] = []
    with Broker(own_broker.url, app.client_id, app.client_secret) as broker:

        def one(i: int) -> None:
            try:
                creds.append(broker.mint(f"read:data:{i}", orch_id="o", task_id="t"))
            except BaseException as exc:  # reported below; a thread must not swallow it
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len({c.claims.jti for c in creds}) == 50
        for cred in creds:
            cred.release()
    assert _logins(own_broker) == 1
    assert _all_dead(own_broker, creds)


@pytest.mark.anyio
async def test_cancellation_inside_async_with_still_releases(own_broker: Any) -> None:
    app = own_broker.create_app("cancel", ["read:data:*"])
    held: list[AsyncCredential] = []
    async with AsyncBroker(own_broker.url, app.client_id, app.client_secret) as broker:
        with anyio.move_on_after(0.5):
            async with broker.mint("read:data:slow", orch_id="o", task_id="t") as cred:
                held.append(cred)
                await anyio.sleep(10)  # the tool hangs; the deadline cancels it
    assert held[0].released
    assert _all_dead(own_broker, held)
