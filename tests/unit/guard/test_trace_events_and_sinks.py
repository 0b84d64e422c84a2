"""Trace events and sinks: stamping, fan-out, JSON lines, Server-Sent Events, and failing sinks."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from guard_fakes import FakeClock

from agentwrit_tools.trace import (
    EVENT_TYPES,
    CallbackSink,
    Delegated,
    Denied,
    Executed,
    Expired,
    JsonLinesSink,
    Minted,
    Released,
    Renewed,
    Revoked,
    SseSink,
    Trace,
    TraceEvent,
    event_json,
    format_sse,
)

REQUIRED_TYPES = {
    "minted",
    "denied",
    "executed",
    "released",
    "release_failed",
    "delegated",
    "renewed",
    "revoked",
    "expired",
}


def make_trace(*sinks: Any) -> tuple[Trace, FakeClock]:
    clock = FakeClock(step=0.5)
    return Trace(task_id="t-1", orch_id="o-1", sinks=sinks, clock=clock), clock


def test_every_required_event_type_exists_and_is_frozen() -> None:
    assert set(EVENT_TYPES) >= REQUIRED_TYPES
    trace, _ = make_trace()
    event = trace.emit(Revoked, level="task", target="t-1", count=3)
    with pytest.raises(AttributeError):
        event.level = "token"  # type: ignore[misc]


def test_events_are_stamped_with_sequence_both_clocks_and_ids() -> None:
    trace, _clock = make_trace()
    first = trace.emit(Denied, tool="x", call_id="c", reason="outside_ceiling")
    second = trace.emit(Minted, at=90.0, tool="x", jti="j", ttl=5, exp=1, mint_time=0.1)
    assert (first.seq, second.seq) == (1, 2)
    assert (first.task_id, first.orch_id, first.type) == ("t-1", "o-1", "denied")
    assert first.time == pytest.approx(1_700_000_000.0 + first.at)
    # An event measured earlier keeps its own monotonic time and its wall time is shifted to match.
    assert second.at == 90.0
    assert second.time == pytest.approx(1_700_000_000.0 + 90.0)
    assert trace.events[1] is second
    assert len(trace.events) == 2


def test_to_dict_puts_type_first_and_lists_for_tuples() -> None:
    trace, _ = make_trace()
    event = trace.emit(Executed, tool="x", scope=("a:b:c",), outcome="ok", started=1.0, ended=2.0, run_time=1.0)
    data = event.to_dict()
    assert next(iter(data)) == "type"
    assert data["type"] == "executed"
    assert data["scope"] == ["a:b:c"]
    assert json.loads(event_json(event)) == data


def test_sse_format_is_one_message_per_event() -> None:
    trace, _ = make_trace()
    event = trace.emit(Denied, tool="x", reason="unsafe_argument", message="line one\nline two")
    text = format_sse(event)
    assert text.endswith("\n\n")
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "id: 1"
    assert lines[1] == "event: denied"
    assert lines[2].startswith("data: ")
    assert len(lines) == 3  # the newline inside the message is escaped in the JSON
    assert json.loads(lines[2][len("data: ") :])["message"] == "line one\nline two"


def test_sinks_list_callback_jsonl_file_and_stream_sse(tmp_path: Path) -> None:
    got: list[TraceEvent] = []
    stream = io.StringIO()
    sse_messages: list[str] = []
    path = tmp_path / "events.jsonl"
    with JsonLinesSink(path) as to_file:
        trace, _ = make_trace(
            CallbackSink(got.append, types={"released"}),
            to_file,
            JsonLinesSink(stream),
            SseSink(sse_messages.append),
        )
        trace.emit(Minted, tool="x", jti="j", ttl=5, exp=1, mint_time=0.1)
        trace.emit(Released, tool="x", jti="j", window=0.2)
    assert [e.type for e in got] == ["released"]
    file_records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in file_records] == ["minted", "released"]
    assert stream.getvalue() == path.read_text()
    assert [m.split("\n")[1] for m in sse_messages] == ["event: minted", "event: released"]
    sse_stream = io.StringIO()
    SseSink(sse_stream)(trace.events[0])
    assert sse_stream.getvalue() == format_sse(trace.events[0])
    assert trace.events.of_type("minted") == [trace.events[0]]


def test_a_failing_sink_is_logged_and_the_others_still_get_the_event(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: TraceEvent) -> None:
        raise OSError("disk full")

    got: list[TraceEvent] = []
    trace, _ = make_trace(broken, got.append)
    with caplog.at_level(logging.WARNING, logger="agentwrit_tools.trace"):
        trace.emit(Expired, jti="j", exp=5)
    assert [e.type for e in got] == ["expired"]
    assert "OSError" in caplog.text
    assert "disk full" not in caplog.text


def test_events_for_other_layers() -> None:
    got: list[TraceEvent] = []
    trace, _ = make_trace()
    trace.add_sink(got.append)
    trace.emit(Delegated, jti="j2", agent_id="b", scope=("a:b:c",), delegator="a", exp=10)
    trace.emit(Renewed, jti="j3", previous_jti="j2", exp=20)
    assert [e.type for e in got] == ["delegated", "renewed"]
    assert got[0].to_dict()["delegator"] == "a"
