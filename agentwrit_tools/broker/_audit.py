"""The append-only, hash-chained audit log.

Each event's ``hash`` covers the previous event's hash and every field exactly as ``GET /v1/audit/events``
returns it (see :mod:`agentwrit_tools.auditchain`), so anyone holding the API output can re-verify the chain and
any edit or deletion in the database shows. The chain continues across restarts and replicas because the tail is
read back from the store on every append, under the store's serialisation (:meth:`._store.Tx.serialize`), rather
than cached (an indexed lookup; it also stays right after a rollback). Housekeeping never deletes an event.

Details are written by the broker itself from fixed phrases and identifiers — never from tokens, secrets or
request bodies — so the log is safe to export.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._sqltx import AUDIT_COLUMNS
from ._store import Tx

__all__ = ["EVENT_TYPES", "AuditFilter", "append"]

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
        # extension: a person's decision on a tool call that needed approval (see _approvals)
        "approval_granted",
        "approval_refused",
    }
)

_NAMES = AUDIT_COLUMNS


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


async def append(
    tx: Tx,
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
) -> None:
    """Record one event in ``tx``: it commits with the change it describes.

    Raises:
        ValueError: an unknown event type or outcome (a programming error, caught by tests).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown audit event type {event_type!r}")
    if outcome not in ("success", "denied"):
        raise ValueError(f"unknown audit outcome {outcome!r}")
    await tx.append_audit(
        {
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
    )


def event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an event restricted to the API's fields (helper for tests and exports)."""
    return {name: event[name] for name in _NAMES if name in event}
