"""The audit totals kept per filter value: they agree with counting the rows for every filter as the log grows,
later queries count only what was appended since, the kept totals are bounded, and a rolled-back event is never
counted."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from agentwrit_tools.broker._audit import AuditFilter, AuditLog
from agentwrit_tools.broker._audit_counts import AuditCounts
from agentwrit_tools.broker._db import connect

AGENTS = ("app:a", "spiffe://d/agent/o/t1/x", "spiffe://d/agent/o/t2/y")
TASKS = ("", "t1", "t2")
TYPES = ("agent_registered", "token_issued", "token_released", "token_auth_failed")


def _fill(log: AuditLog, conn: sqlite3.Connection, count: int) -> None:
    for n in range(count):
        conn.execute("BEGIN IMMEDIATE")
        log.append(
            TYPES[n % 4],
            outcome="denied" if n % 4 == 3 else "success",
            agent_id=AGENTS[n % 3],
            task_id=TASKS[(n // 2) % 3],
        )
        conn.execute("COMMIT")


def _counted_by_rows(conn: sqlite3.Connection, flt: AuditFilter) -> int:
    where, args = flt.where()
    return int(conn.execute(f"SELECT COUNT(*) FROM audit_events{where}", args).fetchone()[0])  # noqa: S608


def _filters() -> list[AuditFilter]:
    filters = [AuditFilter()]
    filters += [AuditFilter(agent_id=a) for a in (*AGENTS, "nobody")]
    filters += [AuditFilter(task_id=t) for t in TASKS]
    filters += [AuditFilter(event_type=t) for t in TYPES]
    filters += [AuditFilter(outcome=o) for o in ("success", "denied")]
    filters += [AuditFilter(agent_id=a, event_type=t) for a, t in itertools.product(AGENTS, TYPES)]
    filters += [AuditFilter(since_ns=0), AuditFilter(task_id="t1", until_ns=2**62)]
    return filters


def test_every_total_agrees_with_counting_the_rows(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    log = AuditLog(conn)
    for batch in (1, 7, 40):
        _fill(log, conn, batch)
        for flt in _filters():
            assert log.count(flt) == _counted_by_rows(conn, flt), flt
    assert log.count() == 48


def test_only_single_column_filters_without_a_time_range_are_kept(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    counts = AuditCounts(conn)
    assert counts.count(AuditFilter()) == 0
    assert counts.count(AuditFilter(agent_id="x")) == 0
    assert counts.count(AuditFilter(agent_id="x", task_id="t")) is None
    assert counts.count(AuditFilter(event_type="token_issued", since_ns=1)) is None


def test_a_kept_total_counts_only_the_events_appended_since(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    log = AuditLog(conn)
    counts = log._counts
    _fill(log, conn, 40)
    principal = AuditFilter(agent_id=AGENTS[0])
    first = log.count(principal)
    assert counts.counted_in_full == 1
    _fill(log, conn, 12)
    assert log.count(principal) == _counted_by_rows(conn, principal) > first
    assert counts.counted_in_full == 1  # the second time, only the twelve new events were looked at


def test_the_kept_totals_are_bounded_and_an_evicted_one_is_counted_again(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    counts = AuditCounts(conn, size=2)
    log = AuditLog(conn)
    _fill(log, conn, 9)
    for agent in AGENTS:  # three filters, room for two
        assert counts.count(AuditFilter(agent_id=agent)) == _counted_by_rows(conn, AuditFilter(agent_id=agent))
    assert counts.counted_in_full == 3
    assert counts.count(AuditFilter(agent_id=AGENTS[0])) == _counted_by_rows(conn, AuditFilter(agent_id=AGENTS[0]))
    assert counts.counted_in_full == 4  # the oldest was evicted
    assert counts.count(AuditFilter(agent_id=AGENTS[2])) is not None
    assert counts.counted_in_full == 4


def test_a_reopened_log_counts_each_filter_once_and_right(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    conn = connect(db)
    _fill(AuditLog(conn), conn, 30)
    conn.close()
    conn = connect(db)
    reopened = AuditLog(conn)
    for flt in _filters():
        assert reopened.count(flt) == _counted_by_rows(conn, flt), flt


def test_a_rolled_back_event_is_not_counted(tmp_path: Path) -> None:
    conn = connect(tmp_path / "b.db")
    log = AuditLog(conn)
    assert log.count(AuditFilter(agent_id="a")) == 0
    conn.execute("BEGIN IMMEDIATE")
    log.append("token_issued", agent_id="a")
    conn.execute("ROLLBACK")
    assert log.count() == 0
    assert log.count(AuditFilter(agent_id="a")) == 0
    conn.execute("BEGIN IMMEDIATE")
    log.append("token_issued", agent_id="a")  # the same seq again, committed this time
    conn.execute("COMMIT")
    assert log.count(AuditFilter(agent_id="a")) == 1
