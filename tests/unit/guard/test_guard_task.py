"""``Task`` without sockets: configuration errors, and refusals that provably never reach the broker.

The brokers here use an httpx transport that fails the test if it is ever called: every refusal below is decided
before any request could be made. They fetch nothing ahead (``prefetch=False``): an entered task would otherwise
fetch its launch token at once, whatever its calls turn out to be (tests/integration/guard/test_guard_prefetch.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError, Policy, Task, scoped_tool
from agentwrit_tools.trace import ListSink

requests: list[httpx.Request] = []


def _refuse(request: httpx.Request) -> httpx.Response:
    requests.append(request)
    raise AssertionError(f"no request may be sent, got {request.method} {request.url.path}")


@pytest.fixture
def broker() -> Iterator[Broker]:
    requests.clear()
    transport = httpx.MockTransport(_refuse)
    with Broker("http://127.0.0.1:9", "client", "secret", transport=transport, prefetch=False) as client:
        yield client
    assert requests == []


@scoped_tool("read:records:{patient_id}")
def read_record(patient_id: str) -> str:
    return patient_id


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"orch_id": ""}, "orch_id"),
        ({"task_id": "a/b"}, "task_id"),
        ({"ceiling": []}, "at least one scope"),
        ({"ceiling": ["read:records"]}, "task ceiling"),
        ({"budget": 0}, "budget"),
        ({"ttl": 1.5}, "ttl"),
        ({"policy": "raise"}, "Policy"),
        ({"tools": [read_record.fn]}, "ScopedTool"),
    ],
)
def test_task_configuration_errors(broker: Broker, options: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {"orch_id": "o", "task_id": "t", "ceiling": "read:records:*", **options}
    with pytest.raises(ConfigurationError, match=fragment):
        Task(broker, **arguments)


def test_a_task_needs_a_broker() -> None:
    with pytest.raises(ConfigurationError, match="Broker or an AsyncBroker"):
        Task("http://broker", orch_id="o", task_id="t", ceiling="read:records:*")  # type: ignore[arg-type]


def test_two_tools_with_one_name_are_refused(broker: Broker) -> None:
    twin = scoped_tool("read:records:{patient_id}", name="read_record")(read_record.fn)
    with pytest.raises(ConfigurationError, match="two different tools"):
        Task(broker, orch_id="o", task_id="t", ceiling="read:records:*", tools=[read_record, twin])


def test_refusals_never_contact_the_broker(broker: Broker) -> None:
    sink = ListSink()
    task = Task(broker, orch_id="o", task_id="t", ceiling="read:records:p-1", tools=[read_record], sinks=[sink])
    results = [
        task.call(read_record, {"patient_id": "p-2"}),
        task.call(read_record, {"patient_id": "*"}),
        task.call(read_record, {"patient_id": 3}),
        task.call(read_record, "{not json"),
        task.call("read_records", {"patient_id": "p-1"}),
        task.call("read_record", {"patient_id": "p-3"}, tools=[read_record]),
    ]
    kinds = [r.error_kind for r in results]
    assert kinds == [
        "outside_ceiling",
        "unsafe_argument",
        "invalid_arguments",
        "invalid_arguments",
        "unknown_tool",
        "outside_ceiling",
    ]
    assert [r.call_id for r in results] == [f"call-{i}" for i in range(1, 7)]
    assert [e.type for e in task.events] == ["denied", "denied", "rejected", "rejected", "denied", "denied"]
    assert [e.type for e in sink] == [e.type for e in task.events]
    assert task.exposure().denied == 4
    assert task.live_credentials == 0
    assert requests == []


def test_raise_all_raises_refusals_and_closed_tasks_refuse_calls(broker: Broker) -> None:
    from agentwrit_tools import AccessDenied, InvalidToolArguments

    with Task(broker, orch_id="o", task_id="t", ceiling="read:records:p-1", policy=Policy.raise_all()) as task:
        with pytest.raises(AccessDenied) as denied:
            task.call(read_record, {"patient_id": "p-2"})
        with pytest.raises(InvalidToolArguments):
            task.call(read_record, {})
        with pytest.raises(AccessDenied, match="unknown tool"):
            task.call("nope")
    assert denied.value.missing == ("read:records:p-2",)
    assert denied.value.held == ("read:records:p-1",)
    assert task.closed
    with pytest.raises(ConfigurationError, match="closed"):
        task.call(read_record, {"patient_id": "p-1"})


def test_task_properties(broker: Broker) -> None:
    task = Task(broker, orch_id="o", task_id="t", ceiling=["read:records:p-1", "read:records:p-1"], budget=30, ttl=60)
    assert task.ceiling == ("read:records:p-1",)
    assert task.ttl == 30  # never longer than the budget
    assert 29 < task.remaining() <= 30
    assert task.launcher.ceiling == task.ceiling
    assert task.tools == {}
    assert "read:records:p-1" in repr(task)
    with pytest.raises(ConfigurationError, match="ScopedTool or a tool name"):
        task.call(42, {})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="call_id"):
        task.call(read_record, {}, call_id=7)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_refusals_never_contact_the_broker() -> None:
    async with (
        AsyncBroker(
            "http://127.0.0.1:9", "client", "secret", transport=httpx.MockTransport(_refuse), prefetch=False
        ) as client,
        Task(client, orch_id="o", task_id="t", ceiling="read:records:p-1") as task,
    ):
        result = await task.acall(read_record, {"patient_id": "p-2"})
        assert result.denied
        with pytest.raises(ConfigurationError, match="aclose"):
            task.close()
    assert task.closed


def test_close_records_a_leftover_past_its_exp_as_expired_without_asking_the_broker(broker: Broker) -> None:
    from guard_fakes import FakeCredential

    from agentwrit_tools.guard._flow import LiveCall

    task = Task(broker, orch_id="o", task_id="t", ceiling="read:records:*")
    dead = FakeCredential(("read:records:p-1",), task_id="t", orch_id="o", ttl=-5)
    task._registry.add(LiveCall(dead, "read_record", "c-1", ("read:records:p-1",), task.trace.now()))
    task.close()
    assert [e.type for e in task.events] == ["expired"]
    assert task.events[0].jti == dead.claims.jti
    assert dead.releases == 0
    assert task.live_credentials == 0
