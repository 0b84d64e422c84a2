"""Audit-chain verification: a valid chain passes, and every kind of tampering is caught at the right row."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from agentwrit_tools.auditchain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    REASON_BAD_HASH,
    REASON_BAD_LINK,
    REASON_BAD_START,
    REASON_IDS_NOT_CONSECUTIVE,
    REASON_MALFORMED_ID,
    REASON_NOT_AN_OBJECT,
    ChainReport,
    event_hash,
    verify_chain,
)

Event = dict[str, Any]

_TYPES = ["admin_auth", "app_registered", "launch_token_issued", "agent_registered", "token_issued", "token_released"]


def make_chain(count: int, *, start: int = 1, prev: str = GENESIS_HASH) -> list[Event]:
    """A chain shaped like GET /v1/audit/events output, hashed with the broker's own function."""
    events: list[Event] = []
    for number in range(start, start + count):
        event: Event = {
            "id": f"evt-{number:06d}",
            "timestamp": f"2026-11-28T10:{number % 60:02d}:00.{number:09d}Z",
            "event_type": _TYPES[number % len(_TYPES)],
            "agent_id": f"spiffe://agentwrit.local/agent/orch-1/task-{number}/{number:016x}" if number % 2 else "",
            "task_id": f"task-{number}",
            "orch_id": "orch-1",
            "detail": f"event number {number} | with a pipe",
            "resource": "" if number % 3 else f"read:records:P-{number}",
            "outcome": "denied" if number % 5 == 0 else "success",
            "deleg_depth": number % 3,
            "deleg_chain_hash": "" if number % 4 else hashlib.sha256(str(number).encode()).hexdigest(),
            "bytes_transferred": number * 10,
            "prev_hash": prev,
        }
        event["hash"] = event_hash(prev, event)
        prev = event["hash"]
        events.append(event)
    return events


def assert_broken(report: ChainReport, *, index: int, event_id: str | None, reason: str) -> None:
    assert report == ChainReport(
        ok=False, checked=index, first_bad_index=index, first_bad_id=event_id, reason=reason
    ), report


# ---------------------------------------------------------------------------------------------------------------
# event_hash is part of the wire contract: pin it.


def test_event_hash_is_sha256_of_the_pipe_joined_fields_in_contract_order() -> None:
    event = make_chain(1)[0]
    text = "|".join([GENESIS_HASH, *(str(event[name]) for name in HASHED_FIELDS)])
    assert event["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert HASHED_FIELDS[0] == "id"
    assert HASHED_FIELDS[-1] == "bytes_transferred"
    assert len(HASHED_FIELDS) == 12
    assert GENESIS_HASH == "0" * 64


# ---------------------------------------------------------------------------------------------------------------
# Valid chains


def test_empty_chain_is_ok() -> None:
    assert verify_chain([]) == ChainReport(ok=True, checked=0)


def test_valid_chain_passes() -> None:
    events = make_chain(25)
    report = verify_chain(events)
    assert report == ChainReport(ok=True, checked=25, first_bad_index=None, first_bad_id=None, reason=None)
    assert report.ok


def test_a_single_event_chain_passes() -> None:
    assert verify_chain(make_chain(1)) == ChainReport(ok=True, checked=1)


def test_events_are_consumed_lazily_from_any_iterable() -> None:
    events = make_chain(10)

    def pages() -> Iterator[Event]:
        for start in range(0, len(events), 3):
            yield from events[start : start + 3]

    assert verify_chain(pages()) == ChainReport(ok=True, checked=10)


def test_verification_stops_at_the_first_break_without_reading_further() -> None:
    events = make_chain(5)
    events[1]["detail"] = "edited"
    read: list[int] = []

    def tracked() -> Iterator[Event]:
        for index, event in enumerate(events):
            read.append(index)
            yield event

    assert not verify_chain(tracked()).ok
    assert read == [0, 1]


def test_a_page_from_mid_chain_verifies_given_the_previous_hash() -> None:
    events = make_chain(30)
    page = events[10:20]
    assert verify_chain(page, expected_prev=events[9]["hash"]) == ChainReport(ok=True, checked=10)


def test_a_page_from_mid_chain_fails_without_the_previous_hash() -> None:
    events = make_chain(30)
    assert_broken(verify_chain(events[10:20]), index=0, event_id="evt-000011", reason=REASON_BAD_START)


def test_a_page_fails_against_the_wrong_previous_hash() -> None:
    events = make_chain(30)
    report = verify_chain(events[10:20], expected_prev=events[8]["hash"])
    assert_broken(report, index=0, event_id="evt-000011", reason=REASON_BAD_START)


def test_a_chain_built_on_another_start_verifies_with_that_start() -> None:
    anchor = "ab" * 32
    events = make_chain(4, start=1001, prev=anchor)
    assert verify_chain(events, expected_prev=anchor).ok


def test_absent_empty_fields_hash_as_empty_text() -> None:
    # A broker may omit empty values; the hash was computed over empty text, so the event still verifies.
    events = make_chain(4)
    for event in events:
        if event["deleg_chain_hash"] == "":
            del event["deleg_chain_hash"]
        if event["agent_id"] == "":
            event["agent_id"] = None
    assert verify_chain(events) == ChainReport(ok=True, checked=4)


def test_ids_past_six_digits_still_count() -> None:
    events = make_chain(3, start=999_999)
    assert [e["id"] for e in events] == ["evt-999999", "evt-1000000", "evt-1000001"]
    assert verify_chain(events, expected_prev=GENESIS_HASH).ok


# ---------------------------------------------------------------------------------------------------------------
# Tampering


@pytest.mark.parametrize("field", HASHED_FIELDS)
def test_editing_any_hashed_field_of_one_row_is_caught_at_that_row(field: str) -> None:
    events = make_chain(12)
    victim = events[6]
    original = victim[field]
    victim[field] = f"{original}x" if isinstance(original, str) else original + 1
    expected_id = victim["id"] if field != "id" else None
    report = verify_chain(events)
    assert not report.ok
    assert report.first_bad_index == 6
    assert report.checked == 6
    if field == "id":
        # A changed id is first seen as a gap in the numbering.
        assert report.reason in (REASON_IDS_NOT_CONSECUTIVE, REASON_MALFORMED_ID)
    else:
        assert_broken(report, index=6, event_id=expected_id, reason=REASON_BAD_HASH)


def test_editing_an_unhashed_extra_field_is_not_a_break() -> None:
    events = make_chain(4)
    events[2]["display_note"] = "added by a viewer"
    assert verify_chain(events).ok


def test_editing_the_first_row() -> None:
    events = make_chain(5)
    events[0]["outcome"] = "denied" if events[0]["outcome"] == "success" else "success"
    assert_broken(verify_chain(events), index=0, event_id="evt-000001", reason=REASON_BAD_HASH)


def test_editing_the_last_row() -> None:
    events = make_chain(5)
    events[4]["detail"] = "nothing happened"
    assert_broken(verify_chain(events), index=4, event_id="evt-000005", reason=REASON_BAD_HASH)


def test_deleting_a_middle_row() -> None:
    events = make_chain(10)
    del events[4]  # evt-000005
    assert_broken(verify_chain(events), index=4, event_id="evt-000006", reason=REASON_IDS_NOT_CONSECUTIVE)


def test_deleting_a_middle_row_and_renumbering_the_rest() -> None:
    # Closing the gap in the ids leaves the broken link: evt-000005's prev_hash names the deleted row.
    events = make_chain(10)
    del events[4]
    for number, event in enumerate(events, start=1):
        event["id"] = f"evt-{number:06d}"
    assert_broken(verify_chain(events), index=4, event_id="evt-000005", reason=REASON_BAD_LINK)


def test_deleting_the_first_row() -> None:
    events = make_chain(6)
    del events[0]
    assert_broken(verify_chain(events), index=0, event_id="evt-000002", reason=REASON_BAD_START)


def test_deleting_the_last_row_is_invisible_from_the_events_alone() -> None:
    # Documented limit: compare checked with the broker's total / audit_events_count.
    events = make_chain(6)
    del events[-1]
    report = verify_chain(events)
    assert report == ChainReport(ok=True, checked=5)
    assert report.checked != 6


def test_duplicating_a_row() -> None:
    events = make_chain(6)
    events.insert(3, dict(events[2]))
    assert_broken(verify_chain(events), index=3, event_id="evt-000003", reason=REASON_IDS_NOT_CONSECUTIVE)


def test_reordering_two_rows() -> None:
    events = make_chain(10)
    events[3], events[4] = events[4], events[3]
    assert_broken(verify_chain(events), index=3, event_id="evt-000005", reason=REASON_IDS_NOT_CONSECUTIVE)


def test_reordering_the_first_two_rows() -> None:
    events = make_chain(4)
    events[0], events[1] = events[1], events[0]
    assert_broken(verify_chain(events), index=0, event_id="evt-000002", reason=REASON_BAD_START)


def test_changing_a_hash() -> None:
    events = make_chain(8)
    events[5]["hash"] = "f" * 64
    # Row 5 no longer matches its fields; row 6 would also fail to link, but only the first break is reported.
    assert_broken(verify_chain(events), index=5, event_id="evt-000006", reason=REASON_BAD_HASH)


def test_changing_the_case_of_a_hash() -> None:
    events = make_chain(3)
    events[1]["hash"] = events[1]["hash"].upper()
    assert_broken(verify_chain(events), index=1, event_id="evt-000002", reason=REASON_BAD_HASH)


def test_breaking_a_prev_hash() -> None:
    events = make_chain(8)
    events[3]["prev_hash"] = "0" * 64
    assert_broken(verify_chain(events), index=3, event_id="evt-000004", reason=REASON_BAD_LINK)


def test_breaking_a_prev_hash_and_rehashing_that_row_is_still_a_broken_link() -> None:
    events = make_chain(8)
    events[3]["prev_hash"] = "0" * 64
    events[3]["hash"] = event_hash(events[3]["prev_hash"], events[3])
    assert_broken(verify_chain(events), index=3, event_id="evt-000004", reason=REASON_BAD_LINK)


def test_editing_a_row_and_rehashing_only_that_row_breaks_the_next_link() -> None:
    events = make_chain(8)
    events[2]["detail"] = "forged"
    events[2]["hash"] = event_hash(events[2]["prev_hash"], events[2])
    assert_broken(verify_chain(events), index=3, event_id="evt-000004", reason=REASON_BAD_LINK)


def test_a_fully_rewritten_tail_is_consistent_by_construction() -> None:
    # Documented limit: without a head hash kept elsewhere, a tail rewritten with fresh hashes verifies.
    events = make_chain(6)
    events[3]["detail"] = "forged"
    prev = events[2]["hash"]
    for event in events[3:]:
        event["prev_hash"] = prev
        event["hash"] = event_hash(prev, event)
        prev = event["hash"]
    original_head = make_chain(6)[-1]["hash"]
    assert verify_chain(events).ok
    assert events[-1]["hash"] != original_head


# ---------------------------------------------------------------------------------------------------------------
# Malformed input


@pytest.mark.parametrize("field", ["id", "prev_hash", "hash"])
def test_missing_required_field(field: str) -> None:
    events = make_chain(5)
    del events[2][field]
    report = verify_chain(events)
    assert_broken(report, index=2, event_id=None if field == "id" else "evt-000003", reason=f"missing field {field!r}")


def test_null_hash_counts_as_missing() -> None:
    events = make_chain(3)
    events[1]["hash"] = None
    assert_broken(verify_chain(events), index=1, event_id="evt-000002", reason="missing field 'hash'")


@pytest.mark.parametrize(("field", "value"), [("id", 3), ("hash", 12345), ("prev_hash", ["x"])])
def test_non_string_required_field(field: str, value: object) -> None:
    events = make_chain(3)
    events[1][field] = value
    report = verify_chain(events)
    assert report.first_bad_index == 1
    assert report.reason == f"field {field!r} is not a string"
    assert report.first_bad_id == (None if field == "id" else "evt-000002")


@pytest.mark.parametrize("bad_id", ["evt-", "evt-abc", "EVT-000002", "evt-000002 ", "event-2", "evt--2", ""])
def test_malformed_event_id(bad_id: str) -> None:
    events = make_chain(3)
    events[1]["id"] = bad_id
    assert_broken(verify_chain(events), index=1, event_id=bad_id, reason=REASON_MALFORMED_ID)


def test_non_object_event() -> None:
    events: list[Any] = make_chain(3)
    events[2] = ["not", "an", "object"]
    assert_broken(verify_chain(events), index=2, event_id=None, reason=REASON_NOT_AN_OBJECT)


def test_reasons_never_echo_event_content() -> None:
    events = make_chain(3)
    events[1]["detail"] = "secret-looking-value"
    events[1]["hash"] = "not-a-hash-secret"
    report = verify_chain(events)
    assert report.reason is not None
    assert "secret" not in report.reason


def test_report_is_frozen() -> None:
    report = verify_chain([])
    with pytest.raises(AttributeError):
        report.ok = False  # type: ignore[misc]
