"""The async path against the real broker: concurrency, cancellation, timeouts, and sync tools off the loop."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from support import Recorder, assert_dead, audit, is_dead

from agentwrit_tools import (
    AsyncBroker,
    AsyncCredential,
    Broker,
    ConfigurationError,
    Task,
    current_credential,
    scoped_tool,
)
from agentwrit_tools.trace import Executed, Released

pytestmark = pytest.mark.anyio


def _async_broker(broker: Any, app: Any) -> AsyncBroker:
    return AsyncBroker(broker.url, app.client_id, app.client_secret)


async def test_twenty_concurrent_calls_never_share_a_credential(
    broker: Any, app: Any, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    scope_by_patient: dict[str, tuple[str, ...]] = {}

    @scoped_tool("read:records:{patient_id}")
    async def read_record(patient_id: str, credential: AsyncCredential) -> str:
        recorder.saw("read_record", credential)
        await anyio.sleep(0.05)  # overlap the calls
        scope_by_patient[patient_id] = current_credential().scope  # still this call's own, after the others ran
        return patient_id

    async with (
        _async_broker(broker, app) as client,
        Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task,
    ):
        results: list[Any] = []

        async def one(i: int) -> None:
            results.append(await task.acall(read_record, {"patient_id": f"p-{i}"}))

        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(one, i)
        assert task.live_credentials == 0
    assert len(results) == 20
    assert all(r.ok for r in results)
    assert len({s.jti for s in recorder.seen}) == 20
    assert len({s.agent_id for s in recorder.seen}) == 20
    assert scope_by_patient == {f"p-{i}": (f"read:records:p-{i}",) for i in range(20)}
    assert {r.output for r in results} == {f"p-{i}" for i in range(20)}
    assert_dead(operator, recorder.seen)
    assert len(audit(operator, task_id, "token_issued")) == 20


async def test_cancellation_during_the_body_releases_and_propagates(
    broker: Any, app: Any, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    started = anyio.Event()

    @scoped_tool("read:records:{patient_id}")
    async def slow(patient_id: str, credential: AsyncCredential) -> str:
        recorder.saw("slow", credential)
        started.set()
        await anyio.sleep(30)
        return "never"

    async with (
        _async_broker(broker, app) as client,
        Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task,
    ):
        async with anyio.create_task_group() as group:
            group.start_soon(task.acall, slow, {"patient_id": "p-1"})
            await started.wait()
            group.cancel_scope.cancel()
        assert task.live_credentials == 0
        with anyio.move_on_after(0.2) as deadline:  # cancelled by a deadline of the caller, too
            await task.acall(slow, {"patient_id": "p-2"})
        assert deadline.cancelled_caught
        assert task.live_credentials == 0
    assert recorder.runs == 2
    assert_dead(operator, recorder.seen)
    outcomes = [e.outcome for e in task.events if isinstance(e, Executed)]
    assert outcomes == ["cancelled", "cancelled"]
    assert len([e for e in task.events if isinstance(e, Released)]) == 2


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_timeout_releases_the_credential(
    broker: Any, app: Any, operator: Broker, task_id: str, kind: str
) -> None:
    recorder = Recorder()

    if kind == "async":

        @scoped_tool("read:records:{patient_id}", timeout=0.2)
        async def stuck(patient_id: str, credential: AsyncCredential) -> str:
            recorder.saw("stuck", credential)
            await anyio.sleep(30)
            return "never"

    else:

        @scoped_tool("read:records:{patient_id}", timeout=0.2)
        def stuck(patient_id: str, credential: AsyncCredential) -> str:
            recorder.saw("stuck", credential)
            threading.Event().wait(1.0)
            return "too late"

    async with (
        _async_broker(broker, app) as client,
        Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task,
    ):
        with anyio.fail_after(5):
            result = await task.acall(stuck, {"patient_id": "p-1"})
    assert result.error_kind == "timeout"
    assert result.message == "stuck timed out after 0.2 s"
    assert is_dead(operator, recorder.seen[0].token)
    [executed] = [e for e in task.events if isinstance(e, Executed)]
    assert executed.outcome == "timeout"
    assert executed.run_time < 1.0


async def test_exception_in_an_async_body_releases(broker: Any, app: Any, operator: Broker, task_id: str) -> None:
    recorder = Recorder()

    @scoped_tool("write:notes:{patient_id}")
    async def write_note(patient_id: str, text: str, credential: AsyncCredential) -> str:
        recorder.saw("write_note", credential)
        raise ValueError(credential.access_token)

    async with (
        _async_broker(broker, app) as client,
        Task(client, orch_id="o", task_id=task_id, ceiling="write:notes:p-1") as task,
    ):
        result = await task.acall(write_note, {"patient_id": "p-1", "text": "hello"})
    assert result.error_kind == "tool_error"
    assert result.content == "write_note failed (ValueError)"
    assert is_dead(operator, recorder.seen[0].token)


async def test_sync_tools_run_off_the_event_loop_with_their_credential(
    broker: Any, app: Any, operator: Broker, task_id: str
) -> None:
    threads: list[int] = []

    @scoped_tool("read:records:{patient_id}")
    def read_record(patient_id: str, credential: AsyncCredential) -> str:
        threads.append(threading.get_ident())
        assert current_credential() is credential
        return credential.scope[0]

    async with (
        _async_broker(broker, app) as client,
        Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task,
    ):
        result = await task.acall(read_record, {"patient_id": "p-1"})
    assert result.output == "read:records:p-1"
    assert threads != [threading.get_ident()]


async def test_mixing_sync_and_async_is_a_configuration_error(broker: Any, app: Any, client: Broker) -> None:
    @scoped_tool("read:records:{patient_id}")
    async def read_async(patient_id: str) -> str:
        return patient_id

    @scoped_tool("read:records:{patient_id}")
    def read_sync(patient_id: str) -> str:
        return patient_id

    sync_task = Task(client, orch_id="o", task_id="t-mixed", ceiling="read:records:*")
    with pytest.raises(ConfigurationError, match=r"await task\.acall"):
        sync_task.call(read_async, {"patient_id": "p-1"})
    with pytest.raises(ConfigurationError, match=r"task\.call"):
        await sync_task.acall(read_sync, {"patient_id": "p-1"})
    async with _async_broker(broker, app) as async_client:
        async_task = Task(async_client, orch_id="o", task_id="t-mixed", ceiling="read:records:*")
        with pytest.raises(ConfigurationError, match=r"await task\.acall"):
            async_task.call(read_sync, {"patient_id": "p-1"})
        with pytest.raises(ConfigurationError, match="async with"):
            async_task.__enter__()
    assert sync_task.events == []
    assert async_task.events == []
