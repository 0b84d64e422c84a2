"""The audit log's totals, kept as it grows, so ``GET /v1/audit/events`` costs the same at 1M events as at 10k.

Every page of the audit query carries ``total``, the number of events matching its filters. The page itself is
cheap at any size (an index gives the first ``limit`` rows in chain order), but a ``COUNT(*)`` visits every
matching row: the first page of a million-event log, or one principal's or one event type's events, took five
times as long as at 10k. So the count of events per value of each filter column (``agent_id``, ``task_id``,
``event_type``, ``outcome``) is kept in ``audit_counts``, by a trigger on ``audit_events``: in the same
transaction as the event, in SQLite's own code, whoever writes the row (this broker, an older one, a seeding
script). A query with no filter or exactly one of those, and no time range, reads its total there; any other
combination counts the rows as before.

The table is created and checked when the broker opens its database: its grand total must equal the number of
events. If not — a database from before this table, or rows deleted behind the broker's back — the counts are
rebuilt from the log once, before serving.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._audit import AuditFilter

__all__ = ["COUNTED", "AuditCounts"]

COUNTED = ("agent_id", "task_id", "event_type", "outcome")  # the trigger below counts exactly these

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_counts (
    dim TEXT NOT NULL,
    value TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (dim, value)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_counts_on_insert AFTER INSERT ON audit_events BEGIN
    INSERT INTO audit_counts (dim, value, n) VALUES
        ('agent_id', NEW.agent_id, 1), ('task_id', NEW.task_id, 1),
        ('event_type', NEW.event_type, 1), ('outcome', NEW.outcome, 1)
    ON CONFLICT (dim, value) DO UPDATE SET n = n + 1;
END;
"""


class AuditCounts:
    """Totals per filter value, maintained by a trigger (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(_SCHEMA)
        if self.total() != self._events():
            self.rebuild()

    def _events(self) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()  # once, when the broker opens
        return int(row[0])

    def total(self) -> int:
        """Every event: the sum over the two outcomes."""
        row = self._conn.execute("SELECT COALESCE(SUM(n), 0) FROM audit_counts WHERE dim = 'outcome'").fetchone()
        return int(row[0])

    def rebuild(self) -> None:
        """Recount everything from the log (one pass per column), in one transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM audit_counts")
            for column in COUNTED:
                conn.execute(
                    f"INSERT INTO audit_counts (dim, value, n) SELECT ?, {column}, COUNT(*) FROM audit_events"  # noqa: S608 - fixed column names
                    f" GROUP BY {column}",
                    (column,),
                )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def count(self, flt: AuditFilter) -> int | None:
        """The total for ``flt`` when it is kept (no filter, or one counted column and no time range), else None."""
        if flt.since_ns is not None or flt.until_ns is not None:
            return None
        given = [(column, value) for column in COUNTED if (value := getattr(flt, column)) is not None]
        if not given:
            return self.total()
        if len(given) > 1:
            return None
        row = self._conn.execute("SELECT n FROM audit_counts WHERE dim = ? AND value = ?", given[0]).fetchone()
        return int(row[0]) if row else 0
