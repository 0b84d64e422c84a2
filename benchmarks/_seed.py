"""Filling a broker database directly — fast — so scale benchmarks do not spend minutes going through HTTP.

The rows are what the broker itself would have written: the schema is the broker's (its SQLite store's
migrations), audit events carry a valid hash chain (``auditchain.event_hash``) that the broker continues when it
appends, and revocation rules look like the feed's. Seeding uses one transaction with ``synchronous=OFF``: if the
machine crashed mid-seed the benchmark would simply seed again.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from agentwrit_tools.auditchain import GENESIS_HASH, event_hash
from agentwrit_tools.broker._files import create_private
from agentwrit_tools.broker._store_sqlite import SqliteStore

__all__ = ["AuditSeed", "seed_audit", "seed_revocations"]

_EVENTS_PER_CALL = ("launch_token_issued", "agent_registered", "token_issued", "token_released")
CALLS_PER_TASK = 100
_CHUNK = 20_000


@dataclass(frozen=True)
class AuditSeed:
    """What was seeded: how many events, in how long, and the values queries can filter on."""

    count: int
    seconds: float
    first_ns: int
    last_ns: int
    task_ids: tuple[str, ...]


def _timestamp(ns: int, cache: dict[int, str]) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    base = cache.get(seconds)
    if base is None:
        cache.clear()
        base = cache[seconds] = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction:09d}Z"


def _audit_rows(count: int, first_ns: int, step_ns: int) -> Iterator[tuple[object, ...]]:
    prev = GENESIS_HASH
    cache: dict[int, str] = {}
    agent = ""
    for index in range(count):
        seq = index + 1
        call, kind = divmod(index, len(_EVENTS_PER_CALL))
        task = f"task-{call // CALLS_PER_TASK:06d}"
        if kind == 0:
            agent = f"spiffe://agentwrit.local/agent/bench/{task}/{secrets.token_hex(8)}"
        event_type = _EVENTS_PER_CALL[kind]
        ts = first_ns + index * step_ns
        event: dict[str, object] = {
            "id": f"evt-{seq:06d}",
            "timestamp": _timestamp(ts, cache),
            "event_type": event_type,
            "agent_id": "app:app-bench" if kind == 0 else agent,
            "task_id": task,
            "orch_id": "bench",
            "detail": f"{event_type.replace('_', ' ')} for read:bench:item-{call}",
            "resource": f"{call:032x}" if kind >= 2 else "",
            "outcome": "success",
            "deleg_depth": 0,
            "deleg_chain_hash": "",
            "bytes_transferred": 0,
        }
        event["hash"] = digest = event_hash(prev, event)
        event["prev_hash"] = prev
        prev = digest
        yield (
            seq,
            ts,
            event["id"],
            event["timestamp"],
            event_type,
            event["agent_id"],
            task,
            "bench",
            event["detail"],
            event["resource"],
            "success",
            0,
            "",
            0,
            digest,
            event["prev_hash"],
        )


def _bulk(path: Path) -> sqlite3.Connection:
    create_private(path)  # mode 0600, as the broker creates its database (it refuses one others can read)
    store = SqliteStore(path)
    store.open_now()  # the broker's schema and pragmas (WAL), exactly as the broker creates them
    store.close_now()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: index pages stay in memory while seeding
    return conn


def seed_audit(path: Path, count: int, *, progress: Callable[[int], None] | None = None) -> AuditSeed:
    """Append ``count`` hash-chained audit events (1 ms apart, ending now) to a new database at ``path``."""
    started = time.perf_counter()
    step = 1_000_000
    first = time.time_ns() - count * step
    conn = _bulk(path)
    try:
        rows = _audit_rows(count, first, step)
        conn.execute("BEGIN")
        done = 0
        while done < count:
            chunk = [row for _, row in zip(range(_CHUNK), rows, strict=False)]
            conn.executemany(
                "INSERT INTO audit_events (seq, ts_ns, id, timestamp, event_type, agent_id, task_id, orch_id, detail,"
                " resource, outcome, deleg_depth, deleg_chain_hash, bytes_transferred, hash, prev_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                chunk,
            )
            done += len(chunk)
            if progress is not None:
                progress(len(chunk))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    tasks = (count // len(_EVENTS_PER_CALL)) // CALLS_PER_TASK
    task_ids = tuple(f"task-{n:06d}" for n in range(0, max(1, tasks), max(1, tasks // 50)))
    return AuditSeed(count, time.perf_counter() - started, first, first + (count - 1) * step, task_ids)


def seed_revocations(conn: sqlite3.Connection, count: int) -> None:
    """``count`` revocation rules, mostly token-level (releases), some agent-, task- and chain-level."""
    levels = ("token",) * 7 + ("agent", "task", "chain")
    stamp = _timestamp(time.time_ns(), {})
    rows = []
    for n in range(count):
        level = levels[n % len(levels)]
        target = secrets.token_hex(16) if level == "token" else f"{level}-{secrets.token_hex(8)}"
        rows.append((level, target, stamp))
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO revocations (level, target, revoked_at) VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")
