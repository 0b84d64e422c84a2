"""The audit log's totals, kept as it grows, so ``GET /v1/audit/events`` costs the same at 1M events as at 10k.

Every page of the audit query carries ``total``, the number of events matching its filters. The page itself is
cheap at any size (an index gives the first ``limit`` rows in chain order), but a ``COUNT(*)`` visits every
matching row: the first page of a million-event log, or one principal's or one event type's events, took five
times as long as at 10k. The log only grows, and ``seq`` orders it in commit order (events are chained under the
store's serialisation, on every backend), so a total once counted stays right up to the ``seq`` it was counted
through: the next time, only the events appended since are counted — through the filter column's index
(``agent_id``, ``task_id``, ``event_type``) or the ``seq`` order itself, either way a range of new rows — and
added.

Totals are kept for queries with no filter or exactly one of those (or ``outcome``) and no time range, the ones an
operator runs over and over; any other combination is counted as before. They live in memory, per broker process
and a bounded number of them (least recently used first out): nothing is written on the path that appends events,
and a filter not asked about since the process started (or evicted) is counted in full the first time. Counts
read committed events only (a reader outside any transaction), so a total never includes one that may still roll
back.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._audit import AuditFilter
    from ._store import Tx

__all__ = ["COUNTED", "AuditCounts"]

COUNTED = ("agent_id", "task_id", "event_type", "outcome")
KEPT = 4096


class AuditCounts:
    """Totals per filter value, each with the ``seq`` it is counted through (see the module docstring)."""

    def __init__(self, size: int = KEPT) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()  # (column, value) -> (n, seq)
        self.counted_in_full = 0  # for tests and diagnostics

    async def count(self, tx: Tx, flt: AuditFilter) -> int:
        """The number of events matching ``flt``, counting only what was appended since the last time when it can."""
        given = [(column, value) for column in COUNTED if (value := getattr(flt, column)) is not None]
        if flt.since_ns is not None or flt.until_ns is not None or len(given) > 1:
            where, args = flt.where()
            return await tx.audit_count(where, args)
        key = given[0] if given else ("", "")
        tail = await tx.audit_tail()
        kept = self._kept.pop(key, None)
        if kept is None or kept[1] > tail:  # never counted, evicted, or a log that is not the one counted
            total, since = 0, 0
            self.counted_in_full += 1
        else:
            total, since = kept
        column, value = key
        match = f"{column} = ? AND " if column else ""  # a column from COUNTED, never from the request
        args = [value, since, tail] if column else [since, tail]
        total += await tx.audit_count(f" WHERE {match}seq > ? AND seq <= ?", args)
        self._kept[key] = (total, tail)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return total
