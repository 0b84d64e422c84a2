"""The audit log: hash chain across restarts, API-exact hashing, filters, and no secrets in details."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from broker_flow import SECRET, Flow, SyncCore, open_core

from agentwrit_tools.auditchain import GENESIS_HASH, event_hash
from agentwrit_tools.broker import _svc_admin as admin
from agentwrit_tools.broker._audit import AuditFilter
from agentwrit_tools.broker._timefmt import parse_rfc3339_ns, rfc3339_nano

_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def _events(core: SyncCore) -> list[dict[str, object]]:
    return core.audit.query(AuditFilter(), limit=10_000, offset=0)


def _check_chain(events: list[dict[str, object]]) -> None:
    prev = GENESIS_HASH
    for index, event in enumerate(events, start=1):
        assert event["id"] == f"evt-{index:06d}"
        assert event["prev_hash"] == prev
        assert event["hash"] == event_hash(prev, event)
        assert _TS.fullmatch(str(event["timestamp"]))
        prev = str(event["hash"])


def test_chain_continues_across_restart(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    core = open_core(db)
    flow = Flow(core)
    flow.register(["read:data:x"])
    before = _events(core)
    core.close()

    core = open_core(db)
    try:
        Flow(core).register(["read:data:y"])
        after = _events(core)
    finally:
        core.close()
    assert after[: len(before)] == before
    assert len(after) > len(before)
    _check_chain(after)


def test_editing_a_stored_event_is_detectable(tmp_path: Path) -> None:
    core = open_core(tmp_path / "b.db")
    try:
        Flow(core).register(["read:data:x"])
        core.conn.execute("UPDATE audit_events SET outcome = 'denied' WHERE seq = 1")
        events = _events(core)
        assert events[0]["hash"] != event_hash(GENESIS_HASH, events[0])
    finally:
        core.close()


def test_denials_are_recorded_and_change_nothing_else(flow: Flow) -> None:
    from agentwrit_tools.broker._problems import Problem

    tokens_before = flow.core.rows("SELECT COUNT(*) FROM tokens")[0][0]
    with pytest.raises(Problem) as info:
        flow.core.call(admin.admin_login, secret_ok=False, client="10.0.0.1")
    assert info.value.status == 401
    (event,) = flow.core.audit.query(AuditFilter(outcome="denied"), limit=10, offset=0)
    assert (event["event_type"], event["outcome"]) == ("admin_auth_failed", "denied")
    assert flow.core.rows("SELECT COUNT(*) FROM tokens")[0][0] == tokens_before


def test_filters_and_pagination(flow: Flow) -> None:
    a = flow.register(["read:data:x"], task="task-a")
    flow.register(["read:data:x"], task="task-b")
    core = flow.core
    assert core.audit.count(AuditFilter(task_id="task-a")) == 2  # agent_registered + token_issued
    only_a = core.audit.query(AuditFilter(agent_id=a.agent_id, event_type="token_issued"), limit=10, offset=0)
    assert [e["resource"] for e in only_a] == [a.claims["jti"]]
    everything = _events(core)
    page = core.audit.query(AuditFilter(), limit=2, offset=1)
    assert page == everything[1:3]
    middle = parse_rfc3339_ns(str(everything[2]["timestamp"]))
    since = core.audit.query(AuditFilter(since_ns=middle), limit=100, offset=0)
    assert since[0] == everything[2]
    assert core.audit.query(AuditFilter(until_ns=middle - 1), limit=100, offset=0) == everything[:2]


def test_no_secret_or_token_reaches_the_log(flow: Flow) -> None:
    creds = flow.core.call(admin.create_app_record, "billing", ["read:data:*"], None)
    flow.core.call(admin.app_login, creds.client_id, creds.client_secret)
    agent = flow.register(["read:data:x"])
    flow.release(agent.token)
    dump = "\n".join(str(row) for row in flow.core.rows("SELECT * FROM audit_events"))
    for secret in (creds.client_secret, SECRET, agent.token, agent.token.split(".")[2]):
        assert secret not in dump


def test_unknown_event_types_are_a_programming_error(core: SyncCore) -> None:
    with pytest.raises(ValueError, match="unknown audit event type"):
        core.audit.append("made_up")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_database_is_in_wal_mode(core: SyncCore) -> None:
    assert core.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_committed_state_is_visible_to_another_connection(tmp_path: Path) -> None:
    core = open_core(tmp_path / "b.db")
    try:
        Flow(core).register(["read:data:x"])
        other = sqlite3.connect(tmp_path / "b.db")
        try:
            assert other.execute("SELECT COUNT(*) FROM agents").fetchone()[0] == 1
        finally:
            other.close()
    finally:
        core.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.5Z", 1_500_000_000),
        ("1970-01-01T01:00:00+01:00", 0),
        ("2026-11-28T10:32:45.123456789Z", 1795861965123456789),
    ],
)
def test_timestamps_keep_nanoseconds(text: str, expected: int) -> None:
    assert parse_rfc3339_ns(text) == expected
    assert parse_rfc3339_ns(rfc3339_nano(expected)) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-28T10:32:45", "2026-11-28"])
def test_bad_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339_ns(text)
