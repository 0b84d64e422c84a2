"""What every store promises, whichever database is behind it (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from store_support import make

from agentwrit_tools.auditchain import verify_chain
from agentwrit_tools.broker._migrations import LATEST
from agentwrit_tools.broker._store import PURGEABLE, AgentRow, LaunchTokenRow, StoreUnavailable, TokenRecord

pytestmark = pytest.mark.anyio


def _token(jti: str, *, exp: int, sub: str = "spiffe://d/agent/o/t/1", parent: str | None = None) -> TokenRecord:
    return TokenRecord(
        jti=jti, sub=sub, task_id="t", orch_id="o", chain_root=None, lineage=jti, exp=exp, parent_lineage=parent
    )


def _launch(token_hash: str, *, single_use: bool = True, expires_at: float | None = None) -> LaunchTokenRow:
    return LaunchTokenRow(
        token_hash=token_hash,
        agent_name="a",
        allowed_scope='["read:data:*"]',
        max_ttl=300,
        single_use=single_use,
        expires_at=time.time() + 30 if expires_at is None else expires_at,
        created_by="admin",
        app_id=None,
    )


def _event(n: int) -> dict[str, Any]:
    return {
        "event_type": "token_issued",
        "agent_id": f"agent-{n}",
        "task_id": "t",
        "orch_id": "o",
        "detail": f"event {n}",
        "resource": "",
        "outcome": "success",
        "deleg_depth": 0,
        "deleg_chain_hash": "",
        "bytes_transferred": 0,
    }


async def _events(store: Any) -> list[dict[str, Any]]:
    async with store.reader() as tx:
        return list(await tx.audit_events("", [], 10_000, 0))


async def test_the_schema_is_migrated_to_the_latest_version(store: Any) -> None:
    assert await store.schema_version() == LATEST


async def test_reopening_a_migrated_database_keeps_its_state(
    store: Any, backend: str, request: Any, tmp_path: Any
) -> None:
    async with store.transaction() as tx:
        await tx.put_meta("probe", "kept")
    await store.close()
    again = make(backend, request, tmp_path)  # the same file or database, opened again
    await again.open()
    try:
        assert await again.schema_version() == LATEST
        async with again.reader() as tx:
            assert await tx.get_meta("probe") == "kept"
    finally:
        await again.close()
    await store.open()


async def test_a_nonce_is_taken_once_even_when_transactions_race(store: Any) -> None:
    async with store.transaction() as tx:
        await tx.insert_nonces(["n" * 64], time.time() + 30)
        await tx.insert_nonces(["e" * 64], time.time() - 1)

    async def take(nonce: str) -> bool:
        async with store.transaction() as tx:
            return bool(await tx.take_nonce(nonce, time.time()))

    results = await asyncio.gather(*(take("n" * 64) for _ in range(16)))
    assert results.count(True) == 1
    assert not await take("e" * 64)  # expired: refused like a used one
    assert not await take("x" * 64)


async def test_a_single_use_launch_token_is_used_once_and_a_multi_use_one_until_it_expires(store: Any) -> None:
    async with store.transaction() as tx:
        await tx.insert_launch_token(_launch("once"))
        await tx.insert_launch_token(_launch("many", single_use=False))
        await tx.insert_launch_token(_launch("old", expires_at=time.time() - 1))

    async def use(token_hash: str) -> bool:
        async with store.transaction() as tx:
            return bool(await tx.use_launch_token(token_hash, time.time()))

    assert (await asyncio.gather(*(use("once") for _ in range(16)))).count(True) == 1
    assert all(await asyncio.gather(*(use("many") for _ in range(4))))
    assert not await use("old")
    async with store.reader() as tx:
        once, many = await tx.launch_token("once"), await tx.launch_token("many")
    assert once is not None
    assert once.consumed
    assert many is not None
    assert not many.consumed


async def test_a_rolled_back_transaction_leaves_nothing(store: Any) -> None:
    async def half_way() -> None:
        async with store.transaction() as tx:
            await tx.insert_nonces(["r" * 64], time.time() + 30)
            await tx.append_audit(_event(1))
            raise RuntimeError("the request failed half way")

    with pytest.raises(RuntimeError):
        await half_way()
    async with store.reader() as tx:
        assert await tx.nonce_expiry("r" * 64) is None
        assert await tx.audit_count() == 0


async def test_rules_are_stored_once_and_the_feed_is_in_commit_order_when_writers_race(store: Any) -> None:
    async def revoke(n: int) -> bool:
        async with store.transaction() as tx:
            added = await tx.add_rule("token", f"jti-{n}", "2026-01-01T00:00:00Z", None)
            await asyncio.sleep(0)  # let the others run while this one holds its place
            await tx.append_audit(_event(n))
            return bool(added)

    assert all(await asyncio.gather(*(revoke(n) for n in range(24))))
    assert not await revoke(3)  # the same rule again: not added, the first one's seq kept
    async with store.reader() as tx:
        feed = await tx.feed(0, 1000)
        first, rest = await tx.feed(0, 10), await tx.feed(10, 1000)
    seqs = [row.seq for row in feed]
    assert seqs == sorted(set(seqs))
    assert sorted(row.target for row in feed) == sorted(f"jti-{n}" for n in range(24))
    assert first + rest == feed  # paging by "after" misses nothing


async def test_the_audit_chain_stays_one_line_under_concurrent_appends(store: Any) -> None:
    async def append(n: int) -> None:
        async with store.transaction() as tx:
            await tx.append_audit(_event(2 * n))
            await asyncio.sleep(0)
            await tx.append_audit(_event(2 * n + 1))

    await asyncio.gather(*(append(n) for n in range(32)))
    events = await _events(store)
    assert len(events) == 64
    assert verify_chain(events).ok
    assert [e["id"] for e in events] == [f"evt-{n:06d}" for n in range(1, 65)]
    # Each transaction's two events are adjacent: the chain is serialised per transaction.
    pairs = [int(e["detail"].split()[1]) for e in events]
    assert all(pairs[i] // 2 == pairs[i + 1] // 2 for i in range(0, 64, 2))


async def test_token_records_round_trip_with_their_audience_key_binding_and_lineage(store: Any) -> None:
    now = int(time.time())
    bound = TokenRecord(
        jti="a1",
        sub="spiffe://d/agent/o/t/1",
        task_id="t",
        orch_id="o",
        chain_root=None,
        lineage="a1",
        exp=now + 60,
        kind="agent",
        ttl=60,
        iat=now,
        renew_until=now + 3600,
        audience="https://mcp.example/records",
        jkt="NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
    )
    async with store.transaction() as tx:
        await tx.insert_token(bound)
        await tx.insert_token(_token("d1", exp=now + 30, parent="a1"))
        await tx.insert_token(_token("old", exp=now - 5))
    async with store.transaction() as tx:
        assert await tx.token("a1") == bound
        assert await tx.audience_of("a1") == "https://mcp.example/records"
        assert (await tx.token("d1")).jkt is None  # a bearer token
        assert [r.jti for r in await tx.delegated_from(["a1"])] == ["d1"]
        live = sorted(r.jti for r in await tx.live_tokens("task_id", "t", now))
    assert live == ["a1", "d1"]


async def test_the_local_revocation_answer_matches_the_rules_once_committed(store: Any) -> None:
    assert not store.revoked("j1", "s", "t", None)
    async with store.transaction() as tx:
        await tx.add_rule("token", "j1", "2026-01-01T00:00:00Z", int(time.time()) + 60)
        await tx.add_rule("task", "t9", "2026-01-01T00:00:00Z", None)
    assert store.revoked("j1", "s", "t", None)
    assert store.revoked("other", "s", "t9", None)
    assert not store.revoked("other", "s", "t", None)
    async with store.transaction() as tx:
        assert await tx.rule_matches("j1", "s", "t", None)


async def test_housekeeping_purges_expired_rows_in_bounded_batches_and_never_an_audit_event(store: Any) -> None:
    from agentwrit_tools.broker._housekeeping import purge_expired
    from agentwrit_tools.broker._settings import BrokerSettings

    now = int(time.time())
    long_ago = now - 10 * 86400
    async with store.transaction() as tx:
        for n in range(7):
            await tx.insert_nonces([f"{n:064x}"], now - 1)
            await tx.insert_token(_token(f"dead-{n}", exp=long_ago, sub=f"spiffe://d/agent/o/t/dead{n}"))
            await tx.add_rule("token", f"dead-{n}", "2026-01-01T00:00:00Z", long_ago)
            await tx.insert_launch_token(_launch(f"spent-{n}", expires_at=long_ago))
            await tx.insert_agent(
                AgentRow(f"spiffe://d/agent/o/t/dead{n}", "k", "o", "t", "[]", None, "a", "then", long_ago)
            )
            await tx.append_audit(_event(n))
        await tx.insert_nonces(["f" * 64], now + 30)
        await tx.insert_token(_token("alive", exp=now + 60, sub="spiffe://d/agent/o/t/alive"))
        await tx.add_rule("token", "alive", "2026-01-01T00:00:00Z", now + 60)
        await tx.add_rule("agent", "spiffe://d/agent/o/t/banned", "2026-01-01T00:00:00Z", None)
        await tx.insert_launch_token(_launch("fresh"))
        await tx.insert_agent(AgentRow("spiffe://d/agent/o/t/alive", "k", "o", "t", "[]", None, "a", "now", now))
    async with store.transaction() as tx:
        assert await tx.purge("nonces", now, 3) == 3  # one batch: at most its limit
    purged = await purge_expired(store, BrokerSettings(purge_batch=2))
    assert purged == {
        "nonces": 4,
        "launch_tokens": 7,
        "tokens": 7,
        "revocations": 7,
        "agents": 7,
        "signing_keys": 0,
    }
    assert set(purged) == set(PURGEABLE)
    async with store.reader() as tx:
        assert await tx.nonce_expiry("f" * 64) is not None
        assert await tx.token("alive") is not None
        assert await tx.launch_token("fresh") is not None
        assert await tx.agent_exists("spiffe://d/agent/o/t/alive")
        assert await tx.agent_public_key("spiffe://d/agent/o/t/alive") == "k"
        assert await tx.agent_public_key("spiffe://d/agent/o/t/gone") is None
        assert [r.target for r in await tx.feed(0, 100)] == ["alive", "spiffe://d/agent/o/t/banned"]
        assert await tx.audit_count() == 7
    assert verify_chain(await _events(store)).ok


async def test_a_closed_store_is_unavailable_not_broken(store: Any) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        async with store.transaction() as tx:
            await tx.insert_nonces(["c" * 64], time.time() + 30)
    assert not await store.ping()
    await store.open()
    assert await store.ping()


async def test_an_optimistic_token_rule_is_right_or_the_commit_says_contended(store: Any) -> None:
    from agentwrit_tools.broker._store import Contended

    now = int(time.time())
    async with store.transaction() as tx:
        await tx.insert_token(_token("parent", exp=now + 60))
        await tx.insert_token(_token("child", exp=now + 60, parent="parent"))
        await tx.insert_token(_token("leaf", exp=now + 60))

    async def optimistic(jti: str) -> tuple[bool, list[Any]] | None:
        """The answer, or None when the backend found its assumption wrong at commit (nothing stored then)."""
        try:
            async with store.transaction() as tx:
                added, children = await tx.add_token_rule(
                    jti, "2026-01-01T00:00:00Z", now + 60, children_of=jti, optimistic=True
                )
                if added:  # as a release does: its event only with its rule
                    await tx.append_audit(_event(1))
        except Contended:
            return None
        return added, [c.jti for c in children]

    assert await optimistic("leaf") == (True, [])
    assert await optimistic("leaf") in (None, (False, []))  # already there: never added twice
    assert await optimistic("parent") in (None, (True, ["child"]))  # delegated from: never hidden
    async with store.reader() as tx:
        rules = [(r.level, r.target) for r in await tx.feed(0, 100)]
        events = await tx.audit_count()
    assert rules.count(("token", "leaf")) == 1
    assert events == rules.count(("token", "leaf")) + rules.count(("token", "parent"))
