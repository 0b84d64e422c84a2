"""The two drivers, with fake launchers and credentials: release on every ending, cancellation, timeouts."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from guard_fakes import AsyncFakeCredential, AsyncFakeLauncher, FakeClock, FakeCredential, FakeLauncher, context

from agentwrit_tools import BrokerUnavailable, ConfigurationError, Credential, current_credential, scoped_tool
from agentwrit_tools.guard._drivers import AsyncDriver, LiveRegistry, SyncDriver
from agentwrit_tools.guard._effects import Mint
from agentwrit_tools.guard._flow import CallContext, call_flow


def sync_driver(launcher: Any, ctx: CallContext | None = None) -> tuple[SyncDriver, LiveRegistry]:
    registry = LiveRegistry()
    clock = ctx.trace.now if ctx is not None else FakeClock().monotonic
    return SyncDriver(launcher, registry, clock), registry


def async_driver(launcher: Any, ctx: CallContext | None = None) -> tuple[AsyncDriver, LiveRegistry]:
    registry = LiveRegistry()
    clock = ctx.trace.now if ctx is not None else FakeClock().monotonic
    return AsyncDriver(launcher, registry, clock), registry


def test_sync_ok_sets_the_context_variable_only_during_the_body() -> None:
    seen: list[Any] = []

    @scoped_tool("read:records:{patient_id}")
    def tool(patient_id: str, credential: Credential) -> str:
        seen.append((credential, current_credential()))
        return "done"

    launcher = FakeLauncher()
    driver, registry = sync_driver(launcher)
    result = driver.drive(call_flow(context(), tool, {"patient_id": "p-1"}, "c"))
    assert result.ok
    assert result.output == "done"
    [credential] = launcher.minted
    assert seen == [(credential, credential)]
    assert credential.releases == 1
    assert len(registry) == 0
    with pytest.raises(ConfigurationError, match="no tool call is running"):
        current_credential()


@pytest.mark.parametrize("ending", ["error", "timeout", "interrupt"])
def test_sync_release_on_every_ending(ending: str) -> None:
    @scoped_tool("read:records:{patient_id}", timeout=0.05)
    def tool(patient_id: str) -> str:
        if ending == "error":
            raise ValueError("nope")
        if ending == "interrupt":
            raise KeyboardInterrupt
        time.sleep(0.5)
        return "late"

    launcher = FakeLauncher()
    driver, registry = sync_driver(launcher)
    flow = call_flow(context(), tool, {"patient_id": "p-1"}, "c")
    if ending == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            driver.drive(flow)
    else:
        started = time.monotonic()
        result = driver.drive(flow)
        assert result.error_kind == ("tool_error" if ending == "error" else "timeout")
        assert time.monotonic() - started < 0.4
    assert launcher.minted[0].releases == 1
    assert len(registry) == 0


def test_sync_timeout_runs_the_body_in_a_worker_with_the_credential_visible() -> None:
    seen: list[Any] = []

    @scoped_tool("read:records:{patient_id}", timeout=1)
    def tool(patient_id: str) -> int:
        seen.append(current_credential())
        return threading.get_ident()

    launcher = FakeLauncher()
    driver, _ = sync_driver(launcher)
    result = driver.drive(call_flow(context(), tool, {"patient_id": "p-1"}, "c"))
    assert result.output != threading.get_ident()
    assert seen == launcher.minted


def test_a_mint_failure_releases_nothing_and_a_release_failure_stays_registered() -> None:
    @scoped_tool("read:records:{patient_id}")
    def tool(patient_id: str) -> str:
        return "ok"

    def broken(scopes: tuple[str, ...], ttl: int | None) -> Any:
        raise BrokerUnavailable("down")

    driver, registry = sync_driver(FakeLauncher(broken))
    assert driver.drive(call_flow(context(), tool, {"patient_id": "p-1"}, "c")).error_kind == "mint_failed"
    assert len(registry) == 0

    launcher = FakeLauncher(lambda scopes, ttl: FakeCredential(scopes, release_error=BrokerUnavailable("down")))
    driver, registry = sync_driver(launcher)
    result = driver.drive(call_flow(context(), tool, {"patient_id": "p-1"}, "c"))
    assert result.ok
    assert [live.credential for live in registry.snapshot()] == launcher.minted


def test_the_safety_net_releases_what_an_aborted_flow_minted() -> None:
    credential_box: list[Any] = []

    def broken_flow() -> Any:
        outcome = yield Mint("t", "c", ("read:records:p-1",), 10)
        credential_box.append(outcome.credential)
        raise RuntimeError("a bug after the mint")

    launcher = FakeLauncher()
    driver, registry = sync_driver(launcher)
    with pytest.raises(RuntimeError, match="a bug"):
        driver.drive(broken_flow())
    assert credential_box[0].releases == 1
    assert len(registry) == 0


# -- async ------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_cancellation_in_the_body_releases_then_propagates() -> None:
    entered = anyio.Event()

    @scoped_tool("read:records:{patient_id}")
    async def tool(patient_id: str) -> str:
        entered.set()
        await anyio.sleep(30)
        return "never"

    launcher = AsyncFakeLauncher()
    ctx = context()
    driver, registry = async_driver(launcher, ctx)
    async with anyio.create_task_group() as group:
        group.start_soon(driver.drive, call_flow(ctx, tool, {"patient_id": "p-1"}, "c"))
        await entered.wait()
        group.cancel_scope.cancel()
    assert launcher.minted[0].releases == 1
    assert len(registry) == 0
    assert [e.type for e in ctx.trace.events] == ["minted", "executed", "released"]
    assert ctx.trace.events[1].to_dict()["outcome"] == "cancelled"


@pytest.mark.anyio
async def test_async_cancellation_during_the_mint_finishes_the_mint_releases_and_never_runs_the_body() -> None:
    ran: list[str] = []
    gate = anyio.Event()

    @scoped_tool("read:records:{patient_id}")
    async def tool(patient_id: str) -> str:
        ran.append(patient_id)
        return "ran"

    launcher = AsyncFakeLauncher(gate=gate)
    driver, registry = async_driver(launcher)
    call_scope = anyio.CancelScope()

    async def call() -> None:
        with call_scope:
            await driver.drive(call_flow(context(), tool, {"patient_id": "p-1"}, "c"))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await anyio.sleep(0.01)
            call_scope.cancel()  # while the mint is in flight
            await anyio.sleep(0.01)
            gate.set()  # the broker answers after all
    assert call_scope.cancelled_caught
    assert ran == []
    [credential] = launcher.minted
    assert credential.releases == 1
    assert len(registry) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_async_timeout_releases(kind: str) -> None:
    if kind == "async":

        @scoped_tool("read:records:{patient_id}", timeout=0.05)
        async def tool(patient_id: str) -> str:
            await anyio.sleep(30)
            return "never"

    else:

        @scoped_tool("read:records:{patient_id}", timeout=0.05)
        def tool(patient_id: str) -> str:
            time.sleep(0.5)
            return "late"

    launcher = AsyncFakeLauncher()
    driver, _ = async_driver(launcher)
    with anyio.fail_after(2):
        result = await driver.drive(call_flow(context(), tool, {"patient_id": "p-1"}, "c"))
    assert result.error_kind == "timeout"
    assert launcher.minted[0].releases == 1


@pytest.mark.anyio
async def test_async_release_failure_is_an_outcome_not_an_exception() -> None:
    @scoped_tool("read:records:{patient_id}")
    async def tool(patient_id: str) -> str:
        return "ok"

    launcher = AsyncFakeLauncher(lambda s, t: AsyncFakeCredential(s, release_error=OSError("network")))
    ctx = context()
    driver, registry = async_driver(launcher, ctx)
    result = await driver.drive(call_flow(ctx, tool, {"patient_id": "p-1"}, "c"))
    assert result.ok
    assert ctx.trace.events[-1].type == "release_failed"
    assert len(registry) == 1
    await driver.release(launcher.minted[0])  # what Task.aclose does; still failing, still no exception
    assert len(registry) == 1
