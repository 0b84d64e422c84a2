"""The audit log's hash chain: pure functions shared by the embedded broker and by anyone verifying its output.

Each event's ``hash`` is the hex SHA-256 of its fields joined by ``|`` in a fixed order, starting with the
previous event's hash (64 zeros for the first event). Every field is used exactly as the API returns it, so a
chain can be re-verified from ``GET /v1/audit/events`` output alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["GENESIS_HASH", "HASHED_FIELDS", "event_hash"]

GENESIS_HASH = "0" * 64

# Order matters: it is part of the wire contract.
HASHED_FIELDS: tuple[str, ...] = (
    "id",
    "timestamp",
    "event_type",
    "agent_id",
    "task_id",
    "orch_id",
    "detail",
    "resource",
    "outcome",
    "deleg_depth",
    "deleg_chain_hash",
    "bytes_transferred",
)


def _field_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # never expected; keep it explicit rather than "True"
        return "true" if value else "false"
    return str(value)


def event_hash(prev_hash: str, event: Mapping[str, object]) -> str:
    """The hash an event must carry, given the previous event's hash and the event's API fields."""
    parts = [prev_hash, *(_field_text(event.get(name)) for name in HASHED_FIELDS)]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
