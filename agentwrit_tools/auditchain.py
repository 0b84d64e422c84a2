"""The audit log's hash chain: pure functions shared by the embedded broker and by anyone verifying its output.

Each event's ``hash`` is the hex SHA-256 of its fields joined by ``|`` in a fixed order, starting with the
previous event's hash (64 zeros for the first event). Every field is used exactly as the API returns it, so a
chain can be re-verified from ``GET /v1/audit/events`` output alone: :func:`verify_chain` does that.

What the events alone can and cannot prove:

- an edited field, a changed ``hash`` or ``prev_hash``, a deleted or duplicated row, two rows swapped: each breaks a
  link, and the first broken one is reported;
- a deleted *last* row (or several) leaves a shorter chain that is still perfectly linked. Compare
  :attr:`ChainReport.checked` with the ``total`` of ``GET /v1/audit/events`` or the ``audit_events_count`` of
  ``GET /v1/health`` (or with a count or head hash recorded earlier) to catch it;
- a log rewritten from some row to the end, every hash recomputed, is consistent by construction; only a head
  hash kept somewhere else exposes it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "REASON_BAD_HASH",
    "REASON_BAD_LINK",
    "REASON_BAD_START",
    "REASON_IDS_NOT_CONSECUTIVE",
    "REASON_MALFORMED_ID",
    "REASON_NOT_AN_OBJECT",
    "ChainReport",
    "event_hash",
    "verify_chain",
]

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


# The reasons verify_chain reports. Fixed texts: they never echo event content, so they are safe to print.
REASON_NOT_AN_OBJECT = "event is not an object"
REASON_MALFORMED_ID = "event id is not of the form evt-NNNNNN"
REASON_IDS_NOT_CONSECUTIVE = "event ids are not consecutive"
REASON_BAD_START = "prev_hash does not match the expected previous hash"
REASON_BAD_LINK = "prev_hash does not link to the previous event"
REASON_BAD_HASH = "hash does not match the event's fields"

# Fields without which an event cannot be placed in or checked against the chain. The other hashed fields may be
# absent (a broker may omit empty values); they then hash as empty text, exactly as the broker hashed them.
_REQUIRED_FIELDS = ("id", "prev_hash", "hash")
_EVENT_ID = re.compile(r"evt-([0-9]+)")


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of :func:`verify_chain`.

    Attributes:
        ok: every event verified and linked to its predecessor.
        checked: how many events verified before the first broken link (all of them when ``ok``).
        first_bad_index: position of the first event that fails, in the order given; ``None`` when ``ok``.
        first_bad_id: that event's ``id`` when it has a usable one; ``None`` when ``ok`` or unreadable.
        reason: one of the fixed ``REASON_*`` texts, or ``"missing field '<name>'"`` /
            ``"field '<name>' is not a string"``; ``None`` when ``ok``.
    """

    ok: bool
    checked: int
    first_bad_index: int | None = None
    first_bad_id: str | None = None
    reason: str | None = None


def _broken(index: int, event_id: object, reason: str) -> ChainReport:
    return ChainReport(
        ok=False,
        checked=index,
        first_bad_index=index,
        first_bad_id=event_id if isinstance(event_id, str) else None,
        reason=reason,
    )


def verify_chain(events: Iterable[Mapping[str, object]], *, expected_prev: str = GENESIS_HASH) -> ChainReport:
    """Re-verify a run of audit events and report the first broken link.

    Args:
        events: events in chain order (ascending ``id``), as ``GET /v1/audit/events`` returns them, unfiltered.
            Consumed lazily, so a generator over successive pages works. A filtered listing (by agent, type…) is
            not a chain and will not verify.
        expected_prev: the hash the first event must link to: :data:`GENESIS_HASH` for a log from its start,
            or the ``hash`` of the event just before the first one given, to verify a page from mid-chain.

    For each event, in order: it must carry string ``id``, ``prev_hash`` and ``hash``; its id must follow the
    previous one (so a deleted, duplicated or moved row is named as such); ``prev_hash`` must equal the previous
    event's ``hash`` (``expected_prev`` for the first); ``hash`` must equal :func:`event_hash` of the event.
    A deleted last row cannot be seen from the events alone; see the module documentation.
    """
    previous_hash = expected_prev
    previous_number: int | None = None
    checked = 0
    for index, item in enumerate(events):
        event: object = item  # the output of a JSON parser: trust its shape no more than its content
        if not isinstance(event, Mapping):
            return _broken(index, None, REASON_NOT_AN_OBJECT)
        event_id = event.get("id")
        for name in _REQUIRED_FIELDS:
            if name not in event or event[name] is None:
                return _broken(index, event_id, f"missing field {name!r}")
            if not isinstance(event[name], str):
                return _broken(index, event_id, f"field {name!r} is not a string")
        match = _EVENT_ID.fullmatch(str(event_id))
        if match is None:
            return _broken(index, event_id, REASON_MALFORMED_ID)
        number = int(match.group(1))
        if previous_number is not None and number != previous_number + 1:
            return _broken(index, event_id, REASON_IDS_NOT_CONSECUTIVE)
        prev_hash = str(event["prev_hash"])
        if prev_hash != previous_hash:
            return _broken(index, event_id, REASON_BAD_START if previous_number is None else REASON_BAD_LINK)
        claimed = str(event["hash"])
        if claimed != event_hash(prev_hash, event):
            return _broken(index, event_id, REASON_BAD_HASH)
        previous_hash = claimed
        previous_number = number
        checked += 1
    return ChainReport(ok=True, checked=checked)
