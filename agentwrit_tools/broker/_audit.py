"""The append-only, hash-chained audit log.

Each event's ``hash`` covers the previous event's hash and every field exactly as ``GET /v1/audit/events``
returns it (see :mod:`agentwrit_tools.auditchain`), so anyone holding the API output can re-verify the chain and
any edit or deletion in the database shows. The chain continues across restarts because the tail is read back
from the database on every append rather than cached (an indexed lookup; it also stays right after a rollback).

Details are written by the broker itself from fixed phrases and identifiers — never from tokens, secrets or
request bodies — so the log is safe to export.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..auditchain import GENESIS_HASH, event_hash
from ._audit_counts import AuditCounts
from ._timefmt import now_ns, rfc3339_nano

__all__ = ["EVENT_TYPES", "AuditFilter", "AuditLog"]

EVENT_TYPES = frozenset(
    {
        "admin_auth",
        "admin_auth_failed",
        "app_registered",
        "app_authenticated",
        "app_auth_failed",
        "app_updated",
        "app_deregistered",
        "app_rate_limited",
        "scopes_ceiling_updated",
        "launch_token_issued",
        "launch_token_denied",
        "scope_ceiling_exceeded",
        "agent_registered",
        "registration_policy_violation",
        "token_issued",
        "token_renewed",
        "token_renewal_failed",
        "token_released",
        "token_revoked",
        "token_auth_failed",
        "token_revoked_access",
        "scope_violation",
        "delegation_created",
        "delegation_attenuation_violation",
        "resource_accessed",
    }
)

_COLUMNS = (
    "id, timestamp, event_type, agent_id, task_id, orch_id, detail, resource, outcome, "
    "deleg_depth, deleg_chain_hash, bytes_transferred, hash, prev_hash"
)
_NAMES = [name.strip() for name in _COLUMNS.split(",")]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """The query filters of ``GET /v1/audit/events``; ``None`` means "any"."""

    agent_id: str | None = None
    task_id: str | None = None
    event_type: str | None = None
    outcome: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column in ("agent_id", "task_id", "event_type", "outcome"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since_ns is not None:
            clauses.append("ts_ns >= ?")
            args.append(self.since_ns)
        if self.until_ns is not None:
            clauses.append("ts_ns <= ?")
            args.append(self.until_ns)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class AuditLog:
    """Appends and queries audit events on the broker's connection (the caller owns transactions)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._counts = AuditCounts(conn)  # totals kept per filter value (see _audit_counts)

    def append(
        self,
        event_type: str,
        *,
        outcome: str = "success",
        agent_id: str = "",
        task_id: str = "",
        orch_id: str = "",
        detail: str = "",
        resource: str = "",
        deleg_depth: int = 0,
        deleg_chain_hash: str = "",
        bytes_transferred: int = 0,
    ) -> dict[str, Any]:
        """Record one event and return it as the API shows it.

        Raises:
            ValueError: an unknown event type or outcome (a programming error, caught by tests).
        """
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown audit event type {event_type!r}")
        if outcome not in ("success", "denied"):
            raise ValueError(f"unknown audit outcome {outcome!r}")
        tail = self._conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev_hash = (tail[0] + 1, tail[1]) if tail else (1, GENESIS_HASH)
        ts = now_ns()
        event: dict[str, Any] = {
            "id": f"evt-{seq:06d}",
            "timestamp": rfc3339_nano(ts),
            "event_type": event_type,
            "agent_id": agent_id,
            "task_id": task_id,
            "orch_id": orch_id,
            "detail": detail,
            "resource": resource,
            "outcome": outcome,
            "deleg_depth": deleg_depth,
            "deleg_chain_hash": deleg_chain_hash,
            "bytes_transferred": bytes_transferred,
        }
        event["hash"] = event_hash(prev_hash, event)
        event["prev_hash"] = prev_hash
        self._conn.execute(
            f"INSERT INTO audit_events (seq, ts_ns, {_COLUMNS}) VALUES (?, ?, {', '.join('?' * len(_NAMES))})",  # noqa: S608 - fixed column list
            (seq, ts, *(event[name] for name in _NAMES)),
        )
        return event

    def count(self, flt: AuditFilter | None = None) -> int:
        kept = self._counts.count(flt or AuditFilter())
        if kept is not None:
            return kept
        where, args = (flt or AuditFilter()).where()
        row = self._conn.execute(f"SELECT COUNT(*) FROM audit_events{where}", args).fetchone()  # noqa: S608
        return int(row[0])

    def query(self, flt: AuditFilter, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """Events matching ``flt`` in chain order (oldest first)."""
        where, args = flt.where()
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM audit_events{where} ORDER BY seq LIMIT ? OFFSET ?",  # noqa: S608
            [*args, limit, offset],
        ).fetchall()
        return [dict(zip(_NAMES, row, strict=True)) for row in rows]


def event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an event restricted to the API's fields (helper for tests and exports)."""
    return {name: event[name] for name in _NAMES if name in event}
