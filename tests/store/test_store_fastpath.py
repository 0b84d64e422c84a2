"""What the fast-path extensions need of every store: task-bound launch tokens spent by task or by hash, nonce
batches, and audit totals kept per filter that agree with counting the rows on either backend (see
``conftest.py``: each test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from agentwrit_tools.broker._audit import AuditFilter
from agentwrit_tools.broker._audit_counts import AuditCounts
from agentwrit_tools.broker._store import LaunchTokenRow

pytestmark = pytest.mark.anyio

AGENTS = ("app:a", "spiffe://d/agent/o/t1/x", "spiffe://d/agent/o/t2/y")
TASKS = ("", "t1", "t2")
TYPES = ("agent_registered", "token_issued", "token_released", "token_auth_failed")


def _launch(token_hash: str, *, task_id: str | None, app_id: str | None = "app-1", life: float = 30) -> LaunchTokenRow:
    return LaunchTokenRow(
        token_hash=token_hash,
        agent_name="a",
        allowed_scope='["read:data:*"]',
        max_ttl=300,
        single_use=False,
        expires_at=time.time() + life,
        created_by="app:app-1",
        app_id=app_id,
        task_id=task_id,
    )


def _event(n: int) -> dict[str, Any]:
    return {
        "event_type": TYPES[n % 4],
        "agent_id": AGENTS[n % 3],
        "task_id": TASKS[(n // 2) % 3],
        "orch_id": "o",
        "detail": f"event {n}",
        "resource": "",
        "outcome": "denied" if n % 4 == 3 else "success",
        "deleg_depth": 0,
        "deleg_chain_hash": "",
        "bytes_transferred": 0,
    }


async def _fill(store: Any, start: int, count: int) -> None:
    for n in range(start, start + count):
        async with store.transaction() as tx:
            await tx.append_audit(_event(n))


def _filters() -> list[AuditFilter]:
    filters = [AuditFilter()]
    filters += [AuditFilter(agent_id=a) for a in (*AGENTS, "nobody")]
    filters += [AuditFilter(task_id=t) for t in TASKS]
    filters += [AuditFilter(event_type=t) for t in TYPES]
    filters += [AuditFilter(outcome=o) for o in ("success", "denied")]
    filters += [AuditFilter(agent_id=a, event_type=t) for a, t in itertools.product(AGENTS, TYPES)]
    filters += [AuditFilter(since_ns=0), AuditFilter(task_id="t1", until_ns=2**62)]
    return filters


async def _by_rows(store: Any, flt: AuditFilter) -> int:
    where, args = flt.where()
    async with store.reader() as tx:
        return int(await tx.audit_count(where, args))


async def _kept(store: Any, counts: AuditCounts, flt: AuditFilter) -> int:
    async with store.reader() as tx:
        return await counts.count(tx, flt)


async def test_a_launch_token_keeps_its_task_and_a_task_spends_only_its_live_ones(store: Any) -> None:
    async with store.transaction() as tx:
        await tx.insert_launch_token(_launch("a1", task_id="task-a"))
        await tx.insert_launch_token(_launch("a2", task_id="task-a"))
        await tx.insert_launch_token(_launch("a-old", task_id="task-a", life=-1))
        await tx.insert_launch_token(_launch("a-other-app", task_id="task-a", app_id="app-2"))
        await tx.insert_launch_token(_launch("b1", task_id="task-b"))
        await tx.insert_launch_token(_launch("free", task_id=None))
    async with store.reader() as tx:
        row = await tx.launch_token("a1")
        assert row is not None
        assert row.task_id == "task-a"
        free = await tx.launch_token("free")
        assert free is not None
        assert free.task_id is None
    async with store.transaction() as tx:
        assert await tx.spend_launch_tokens(time.time(), task_id="task-a", app_id="app-1") == 2
    async with store.transaction() as tx:
        assert await tx.spend_launch_tokens(time.time(), task_id="task-a", app_id="app-1") == 0  # spent already
        assert await tx.spend_launch_tokens(time.time(), task_id="task-a") == 1  # the operator: any app's
    async with store.transaction() as tx:  # spent is what registration refuses
        assert await tx.use_launch_token("a1", time.time()) is None
        assert await tx.use_launch_token("b1", time.time()) is not None
        assert await tx.use_launch_token("free", time.time()) is not None


async def test_presented_launch_tokens_are_spent_exactly_and_only_the_apps_own(store: Any) -> None:
    async with store.transaction() as tx:
        for name, app in (("x1", "app-1"), ("x2", "app-1"), ("y1", "app-2")):
            await tx.insert_launch_token(_launch(name, task_id=None, app_id=app))
    async with store.transaction() as tx:
        assert await tx.spend_launch_tokens(time.time(), token_hashes=["x1", "y1", "unknown"], app_id="app-1") == 1
        assert await tx.spend_launch_tokens(time.time(), token_hashes=[], app_id="app-1") == 0
    async with store.reader() as tx:
        x1, x2, y1 = [await tx.launch_token(h) for h in ("x1", "x2", "y1")]
    assert x1 is not None
    assert x2 is not None
    assert y1 is not None
    assert (x1.consumed, x2.consumed, y1.consumed) == (True, False, False)  # y1: another app's, presented or not


async def test_a_nonce_batch_is_stored_at_once_and_each_is_taken_once(store: Any) -> None:
    nonces = [f"{n:064x}" for n in range(64)]
    async with store.transaction() as tx:
        await tx.insert_nonces(nonces, time.time() + 30)

    async def take(nonce: str) -> bool:
        async with store.transaction() as tx:
            return bool(await tx.take_nonce(nonce, time.time()))

    assert all(await asyncio.gather(*(take(n) for n in nonces)))
    assert not any(await asyncio.gather(*(take(n) for n in nonces[:8])))


async def test_every_kept_total_agrees_with_counting_the_rows_as_the_log_grows(store: Any) -> None:
    counts = AuditCounts()
    async with store.reader() as tx:
        assert await tx.audit_tail() == 0
    start = 0
    for batch in (1, 7, 40):
        await _fill(store, start, batch)
        start += batch
        for flt in _filters():
            assert await _kept(store, counts, flt) == await _by_rows(store, flt), flt
    async with store.reader() as tx:
        assert await tx.audit_tail() == 48
    assert await _kept(store, counts, AuditFilter()) == 48


async def test_a_kept_total_counts_only_what_was_appended_since_even_under_concurrent_appends(store: Any) -> None:
    counts = AuditCounts()
    await _fill(store, 0, 40)
    principal = AuditFilter(agent_id=AGENTS[0])
    first = await _kept(store, counts, principal)
    assert counts.counted_in_full == 1

    async def append(n: int) -> None:
        async with store.transaction() as tx:
            await tx.append_audit(_event(n))
            await asyncio.sleep(0)

    async def read() -> None:
        for _ in range(8):
            await _kept(store, counts, principal)
            await asyncio.sleep(0)

    await asyncio.gather(*(append(n) for n in range(40, 64)), read())
    assert await _kept(store, counts, principal) == await _by_rows(store, principal) > first
    assert counts.counted_in_full == 1  # never counted in full again: only the new events were looked at


async def test_the_kept_totals_are_bounded_and_a_rolled_back_event_is_never_counted(store: Any) -> None:
    counts = AuditCounts(size=2)
    await _fill(store, 0, 9)
    for agent in AGENTS:  # three filters, room for two
        flt = AuditFilter(agent_id=agent)
        assert await _kept(store, counts, flt) == await _by_rows(store, flt)
    assert counts.counted_in_full == 3
    assert await _kept(store, counts, AuditFilter(agent_id=AGENTS[0])) == await _by_rows(
        store, AuditFilter(agent_id=AGENTS[0])
    )
    assert counts.counted_in_full == 4  # the oldest was evicted

    before = await _kept(store, counts, AuditFilter())

    async def rolled_back() -> None:
        async with store.transaction() as tx:
            await tx.append_audit(_event(0))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await rolled_back()
    assert await _kept(store, counts, AuditFilter()) == before
    await _fill(store, 0, 1)  # the same seq again, committed this time
    assert await _kept(store, counts, AuditFilter()) == before + 1
