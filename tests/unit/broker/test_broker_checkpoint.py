"""WAL checkpoints happen in the background, not inside a request's commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from broker_flow import Flow, open_core

from agentwrit_tools.broker._checkpoint import SAFETY_PAGES, Checkpointer


def _in_main_file(db: Path) -> int:
    """Audit events already copied into the database file itself (``immutable`` reads ignore the WAL)."""
    conn = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])
    except sqlite3.OperationalError:  # not even the schema has been checkpointed yet
        return 0
    finally:
        conn.close()


def test_commits_reach_the_database_file_without_a_commit_checkpointing(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    core = open_core(db)
    try:
        assert core.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SAFETY_PAGES
        flow = Flow(core)
        for _ in range(5):
            flow.register(["read:data:x"])
        written = core.audit.count()
        deadline = time.monotonic() + 5
        while _in_main_file(db) < written and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _in_main_file(db) == written
    finally:
        core.close()


def test_an_in_memory_broker_has_no_checkpointer() -> None:
    core = open_core(None)
    try:
        assert core.store._checkpointer is None
    finally:
        core.close()


def test_stop_ends_the_thread_and_a_missing_file_is_not_fatal(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "missing" / "b.db", interval=0.01).start()
    checkpointer.stop()
    assert not checkpointer._thread.is_alive()
