"""The exposure report: window, run time, overhang and ratio per credential, and their p50/p95/max."""

from __future__ import annotations

import io
import math

import pytest
from guard_fakes import FakeClock

from agentwrit_tools.trace import (
    Denied,
    Executed,
    Expired,
    ExposureReport,
    Minted,
    Rejected,
    Released,
    ReleaseFailed,
    Trace,
    percentile,
)


def run(trace: Trace, jti: str, mint: float, start: float, end: float, release: float | None, exp: int = 0) -> None:
    common = {"tool": "read", "call_id": f"c-{jti}", "scope": ("read:records:p",), "jti": jti, "agent_id": "a"}
    trace.emit(Minted, at=mint, ttl=60, exp=exp or 1_700_000_200, mint_time=0.01, **common)
    trace.emit(Executed, at=end, outcome="ok", started=start, ended=end, run_time=end - start, **common)
    if release is None:
        trace.emit(ReleaseFailed, at=end + 0.01, exp=exp or 1_700_000_200, error="BrokerUnavailable", **common)
    else:
        trace.emit(Released, at=release, window=release - mint, **common)


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert math.isnan(percentile([], 50))


def test_per_call_math() -> None:
    trace = Trace(task_id="t", orch_id="o", clock=FakeClock())
    run(trace, "j1", mint=10.0, start=10.01, end=10.06, release=10.07)
    report = ExposureReport.from_events(trace.events)
    [call] = report.calls
    assert call.window == pytest.approx(0.07)
    assert call.run_time == pytest.approx(0.05)
    assert call.overhang == pytest.approx(0.02)
    assert call.ratio == pytest.approx(1.4)
    assert call.released
    assert call.outcome == "ok"


def test_unreleased_credentials_count_until_their_exp() -> None:
    clock = FakeClock()
    trace = Trace(task_id="t", orch_id="o", clock=clock)
    mint_at = 50.0
    exp = int(1_700_000_000 + mint_at + 30)  # 30 s after the mint, on the fake wall clock
    run(trace, "j1", mint=mint_at, start=50.01, end=50.02, release=None, exp=exp)
    report = ExposureReport.from_events(trace.events)
    [call] = report.unreleased
    assert not call.released
    assert call.window == pytest.approx(30.0)
    assert call.released_at is None


def test_an_expired_leftover_ends_at_its_exp() -> None:
    trace = Trace(task_id="t", orch_id="o", clock=FakeClock())
    exp = int(1_700_000_000 + 10.0 + 60)
    run(trace, "j1", mint=10.0, start=10.01, end=10.02, release=None, exp=exp)
    trace.emit(Expired, tool="read", jti="j1", exp=exp)
    [call] = ExposureReport.from_events(trace.events).unreleased
    assert call.window == pytest.approx(60.0)


def test_summary_counts_and_stats() -> None:
    trace = Trace(task_id="t", orch_id="o", clock=FakeClock())
    for i, run_time in enumerate([0.05, 0.05, 0.05, 0.10]):
        start = 10.0 * (i + 1)
        run(trace, f"j{i}", mint=start - 0.01, start=start, end=start + run_time, release=start + run_time + 0.01)
    trace.emit(Denied, tool="read", reason="outside_ceiling")
    trace.emit(Rejected, tool="read")
    report = ExposureReport.from_events(trace.events)
    summary = report.summary()
    assert (summary["credentials"], summary["denied"], summary["rejected"], summary["unreleased"]) == (4, 1, 1, 0)
    assert summary["window"]["p50"] == pytest.approx(0.07)
    assert summary["window"]["max"] == pytest.approx(0.12)
    assert summary["overhang"]["p95"] == pytest.approx(0.02)
    assert summary["ratio"]["max"] == pytest.approx(1.4)
    assert report.to_dict()["calls"][0]["scope"] == ["read:records:p"]


def test_empty_report_and_tables() -> None:
    empty = ExposureReport.from_events([])
    assert empty.summary()["window"] == {"count": 0, "p50": None, "p95": None, "max": None}
    assert "0 credentials" in empty.table()

    trace = Trace(task_id="t", orch_id="o", clock=FakeClock())
    run(trace, "j1", mint=10.0, start=10.01, end=10.06, release=10.07)
    report = ExposureReport.from_events(trace.events)
    table = report.table()
    lines = table.splitlines()
    assert lines[0].split() == [
        "call",
        "tool",
        "scope",
        "window",
        "ms",
        "run",
        "ms",
        "overhang",
        "ms",
        "ratio",
        "released",
    ]
    assert "70.0" in table
    assert "1.40" in table
    plain = io.StringIO()
    report.print(file=plain)  # not a terminal: plain text even when rich is installed
    assert plain.getvalue() == table


def test_rich_table_when_asked() -> None:
    pytest.importorskip("rich")
    trace = Trace(task_id="t", orch_id="o", clock=FakeClock())
    run(trace, "j1", mint=10.0, start=10.01, end=10.06, release=10.07)
    out = io.StringIO()
    ExposureReport.from_events(trace.events).print(file=out, rich=True)
    text = out.getvalue()
    assert "Credential exposure" in text
    assert "read:records:p" in text  # data, not markup: no emoji or style was made of it
