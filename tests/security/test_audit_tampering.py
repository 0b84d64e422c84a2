"""Audit-log tampering: rows edited, deleted or reordered directly in the SQLite file of a stopped broker.

After the tampering the broker is started again on the same file and the events are fetched the way anyone would,
through ``GET /v1/audit/events``. Both :func:`agentwrit_tools.auditchain.verify_chain` and the ``agentwrit-tools
audit verify`` command must refuse the chain and name the first broken link; the untouched log verifies (control).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentwrit_tools.auditchain import (
    REASON_BAD_HASH,
    REASON_BAD_LINK,
    REASON_IDS_NOT_CONSECUTIVE,
    event_hash,
    verify_chain,
)
from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.cli import main

SECRET = "tamper-secret"
TARGET = 7  # the row (seq) the attacker goes after: somewhere in the middle of the chain

Tamper = Callable[[sqlite3.Connection], None]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A broker database holding a few dozen real events; the broker is stopped when this returns."""
    path = tmp_path / "broker.db"
    with EmbeddedBroker(db_path=path, admin_secret=SECRET) as running, httpx.Client(base_url=running.url) as c:
        for n in range(6):
            running.create_app(f"tamper-{n}", ["read:records:*"])
        admin = c.post("/v1/admin/auth", json={"secret": SECRET}).json()["access_token"]
        for n in range(6):
            c.post(
                "/v1/revoke", json={"level": "task", "target": f"t-{n}"}, headers={"Authorization": f"Bearer {admin}"}
            )
    return path


def _events(url: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url) as c:
        admin = c.post("/v1/admin/auth", json={"secret": SECRET}).json()["access_token"]
        events: list[dict[str, Any]] = []
        while True:
            page = c.get(
                "/v1/audit/events",
                params={"limit": 1000, "offset": len(events)},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()
            events.extend(page["events"])
            if not page["events"] or len(events) >= page["total"]:
                return events


@pytest.fixture
def after_tampering(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Tamper], tuple[Any, str]]:
    """Tamper with the stopped broker's file, restart it, and return (verify_chain's report, the CLI's output)."""

    def run(tamper: Tamper) -> tuple[Any, str]:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("BEGIN")
            tamper(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        with EmbeddedBroker(db_path=db, admin_secret=SECRET) as running:
            report = verify_chain(_events(running.url))
            monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", SECRET)
            capsys.readouterr()
            code = main(["audit", "verify", "--url", running.url])
            out = capsys.readouterr().out
        assert code == (0 if report.ok else 1), out
        return report, out

    return run


def _row(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    conn.row_factory = None
    return dict(row)


def _evt(seq: int) -> str:
    return f"evt-{seq:06d}"


def test_control_untouched_audit_log_verifies(after_tampering: Any) -> None:
    report, out = after_tampering(lambda conn: None)
    assert report.ok
    assert report.checked >= 14
    assert "audit chain OK" in out


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", "nothing happened here"),
        ("event_type", "app_deregistered"),
        ("outcome", "denied"),
        ("agent_id", "app:someone-else"),
        ("task_id", "t-innocent"),
        ("resource", "elsewhere"),
        ("timestamp", "2020-01-01T00:00:00.000000000Z"),
        ("deleg_depth", 3),
    ],
)
def test_edited_audit_row_is_detected(after_tampering: Any, column: str, value: object) -> None:
    def edit(conn: sqlite3.Connection) -> None:
        before = conn.execute(f"SELECT {column} FROM audit_events WHERE seq = ?", (TARGET,)).fetchone()[0]  # noqa: S608
        assert before != value
        conn.execute(f"UPDATE audit_events SET {column} = ? WHERE seq = ?", (value, TARGET))  # noqa: S608

    report, out = after_tampering(edit)
    assert not report.ok
    assert (report.first_bad_index, report.first_bad_id, report.reason) == (TARGET - 1, _evt(TARGET), REASON_BAD_HASH)
    assert f"BROKEN at index {TARGET - 1} (event {_evt(TARGET)})" in out


def test_edited_audit_row_with_its_hash_recomputed_is_detected_at_the_next_link(after_tampering: Any) -> None:
    def edit_and_rehash(conn: sqlite3.Connection) -> None:
        row = _row(conn, TARGET)
        row["detail"] = "rewritten by someone who knows the hash rule"
        new_hash = event_hash(row["prev_hash"], row)
        conn.execute("UPDATE audit_events SET detail = ?, hash = ? WHERE seq = ?", (row["detail"], new_hash, TARGET))

    report, out = after_tampering(edit_and_rehash)
    assert not report.ok
    assert (report.first_bad_id, report.reason) == (_evt(TARGET + 1), REASON_BAD_LINK)
    assert f"event {_evt(TARGET + 1)}" in out


def test_deleted_audit_row_is_detected(after_tampering: Any) -> None:
    report, out = after_tampering(lambda conn: conn.execute("DELETE FROM audit_events WHERE seq = ?", (TARGET,)))
    assert not report.ok
    assert (report.first_bad_index, report.first_bad_id, report.reason) == (
        TARGET - 1,
        _evt(TARGET + 1),
        REASON_IDS_NOT_CONSECUTIVE,
    )
    assert f"event {_evt(TARGET + 1)}" in out


def test_deleted_audit_row_with_ids_and_links_patched_is_still_detected(after_tampering: Any) -> None:
    """The attacker renumbers the later rows and relinks the next one: the next row's own hash gives it away."""

    def delete_and_patch(conn: sqlite3.Connection) -> None:
        victim = _row(conn, TARGET)
        conn.execute("DELETE FROM audit_events WHERE seq = ?", (TARGET,))
        last = conn.execute("SELECT MAX(seq) FROM audit_events").fetchone()[0]
        for seq in range(TARGET + 1, last + 1):
            conn.execute("UPDATE audit_events SET seq = ?, id = ? WHERE seq = ?", (seq - 1, _evt(seq - 1), seq))
        conn.execute("UPDATE audit_events SET prev_hash = ? WHERE seq = ?", (victim["prev_hash"], TARGET))

    report, out = after_tampering(delete_and_patch)
    assert not report.ok
    assert (report.first_bad_id, report.reason) == (_evt(TARGET), REASON_BAD_HASH)
    assert f"event {_evt(TARGET)}" in out


def test_reordered_audit_rows_are_detected(after_tampering: Any) -> None:
    def swap(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE audit_events SET seq = -1 WHERE seq = ?", (TARGET,))
        conn.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (TARGET, TARGET + 1))
        conn.execute("UPDATE audit_events SET seq = ? WHERE seq = -1", (TARGET + 1,))

    report, out = after_tampering(swap)
    assert not report.ok
    assert (report.first_bad_index, report.first_bad_id, report.reason) == (
        TARGET - 1,
        _evt(TARGET + 1),
        REASON_IDS_NOT_CONSECUTIVE,
    )
    assert f"BROKEN at index {TARGET - 1}" in out


def test_reordered_audit_rows_with_ids_swapped_back_are_detected(after_tampering: Any) -> None:
    """Swap two rows' contents but keep the ids in order: the links no longer hold."""

    def swap_contents(conn: sqlite3.Connection) -> None:
        first, second = _row(conn, TARGET), _row(conn, TARGET + 1)
        columns = [c for c in first if c not in ("seq", "id")]
        for seq, row in ((TARGET, second), (TARGET + 1, first)):
            assignments = ", ".join(f"{c} = ?" for c in columns)
            conn.execute(
                f"UPDATE audit_events SET {assignments} WHERE seq = ?",  # noqa: S608 - test-only fixed columns
                [row[c] for c in columns] + [seq],
            )

    report, out = after_tampering(swap_contents)
    assert not report.ok
    assert report.first_bad_id == _evt(TARGET)
    assert report.reason in (REASON_BAD_LINK, REASON_BAD_HASH)
    assert f"event {_evt(TARGET)}" in out
