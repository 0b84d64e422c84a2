"""Failures around the call: the broker going away, policies that raise, and traces that never hold a token."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support import Recorder, assert_dead, is_dead

from agentwrit_tools import (
    AccessDenied,
    Broker,
    Credential,
    InvalidToolArguments,
    Policy,
    Task,
    ToolError,
    ToolTimeout,
    scoped_tool,
)
from agentwrit_tools.trace import JsonLinesSink, Released, ReleaseFailed, SseSink


def test_a_failed_release_is_recorded_not_raised_and_close_retries_it(tmp_path: Path) -> None:
    from agentwrit_tools.broker import EmbeddedBroker

    db = tmp_path / "broker.db"
    first = EmbeddedBroker(db_path=db).start()
    port = urlsplit(first.url).port
    app = first.create_app("release-fail", ["read:records:*"])
    recorder = Recorder()

    @scoped_tool("read:records:{patient_id}", ttl=30)
    def read_then_broker_dies(patient_id: str, credential: Credential) -> str:
        recorder.saw("read_then_broker_dies", credential)
        first.stop()  # the broker goes away while the tool holds its credential
        return "done"

    with Broker(first.url, app.client_id, app.client_secret, timeout=2.0) as client:
        task = Task(client, orch_id="o", task_id="t-release-fail", ceiling="read:records:*")
        result = task.call(read_then_broker_dies, {"patient_id": "p-1"})
        assert result.ok  # the tool's result is not replaced by the release failure
        assert result.output == "done"
        [failed] = [e for e in task.events if isinstance(e, ReleaseFailed)]
        seen = recorder.seen[0]
        assert (failed.jti, failed.exp, failed.error) == (seen.jti, seen.claims.exp, "BrokerUnavailable")
        assert task.live_credentials == 1
        report = task.exposure()
        assert [c.jti for c in report.unreleased] == [seen.jti]
        assert report.unreleased[0].window == pytest.approx(seen.claims.exp - failed.time, abs=2)

        second = EmbeddedBroker(db_path=db, port=port, admin_secret=first.admin_secret).start()
        try:
            task.close()  # the broker is back: the leftover is released now
            assert task.live_credentials == 0
            [released] = [e for e in task.events if isinstance(e, Released)]
            assert released.jti == seen.jti
            assert not released.already_dead
            with Broker(second.url) as verifier:
                assert is_dead(verifier, seen.token)
            assert task.exposure().unreleased == ()
        finally:
            second.stop()


def test_policies_that_raise_still_release(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()

    @scoped_tool("read:records:{patient_id}", timeout=0.2)
    def read_record(patient_id: str, credential: Credential) -> str:
        recorder.saw("read_record", credential)
        if patient_id == "boom":
            raise LookupError("no such record")
        if patient_id == "slow":
            time.sleep(1)
        return patient_id

    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*", policy=Policy.raise_all()) as task:
        with pytest.raises(LookupError, match="no such record"):
            task.call(read_record, {"patient_id": "boom"})
        with pytest.raises(ToolTimeout) as timed_out:
            task.call(read_record, {"patient_id": "slow"})
        with pytest.raises(AccessDenied) as denied:
            task.call(read_record, {"patient_id": "*"})
        with pytest.raises(InvalidToolArguments):
            task.call(read_record, {"patient": "p-1"})
    assert timed_out.value.timeout == 0.2
    assert denied.value.reason == "unsafe_argument"
    assert recorder.runs == 2
    assert_dead(operator, recorder.seen)

    ceiling = ["read:records:p-1", "read:records:boom"]
    with Task(client, orch_id="o", task_id=task_id, ceiling=ceiling, policy=Policy.raise_errors()) as task:
        assert task.call(read_record, {"patient_id": "p-2"}).denied  # refusals are still told to the model
        with pytest.raises(LookupError):
            task.call(read_record, {"patient_id": "boom"})
        assert task.live_credentials == 0


def test_no_token_reaches_the_model_or_any_sink(client: Broker, task_id: str, tmp_path: Path) -> None:
    recorder = Recorder()
    sse = io.StringIO()
    lines = tmp_path / "trace.jsonl"

    @scoped_tool("read:records:{patient_id}")
    def leaky(patient_id: str, credential: Credential) -> str:
        recorder.saw("leaky", credential)
        if patient_id == "p-1":
            raise RuntimeError(f"upstream said: Authorization: Bearer {credential.access_token}")
        raise ToolError(f"record locked by {credential.access_token}")

    with (
        JsonLinesSink(lines) as jsonl,
        Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*", sinks=[jsonl, SseSink(sse)]) as task,
    ):
        first = task.call(leaky, {"patient_id": "p-1"})
        second = task.call(leaky, {"patient_id": "p-2"})
    assert first.content == "leaky failed (RuntimeError)"
    assert second.content == "leaky failed: record locked by [redacted]"
    tokens = [s.token for s in recorder.seen]
    launch_tokens = [issued.token for issued in task.launcher._launch.issued]  # bearer secrets too
    assert len(launch_tokens) == 1
    texts = [first.content, second.content, repr(first), repr(second), lines.read_text(), sse.getvalue()]
    for launch_token in launch_tokens:
        assert all(launch_token not in text for text in texts)
    for token in tokens:
        for text in texts:
            assert token not in text
            assert token.split(".")[2] not in text  # not even the signature
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    # The task's launch token (fetched ahead as the task started) is in the trace, never its value.
    calls = ["minted", "executed", "released"] * 2
    assert [r["type"] for r in records] == ["launch_token_issued", *calls, "launch_tokens_ended"]
    assert sse.getvalue().count("event: minted\n") == 2
