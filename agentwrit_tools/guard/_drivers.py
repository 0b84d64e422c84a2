"""The two drivers of the per-call flow: the only code that exists once for sync and once for async.

Each loop sends outcomes into the flow and performs the effects it yields. What differs is only *how*:

* Mint/Release — ``launcher.mint``/``credential.release()``, awaited on the async side inside a shielded
  cancel scope: a mint in flight is finished (so the credential it yields is seen and released rather than left
  to its TTL), and a release always completes even when the caller is being cancelled.
* Run — the body is called with the credential set in :data:`CURRENT`. Sync: in the caller's thread, or in a
  daemon worker thread when the tool has a timeout (Python cannot stop a thread; on timeout the credential is
  released, so a body that keeps running holds a dead token). Async: ``async def`` bodies are awaited; plain
  functions run in a worker thread (``anyio.to_thread``, the same mechanism as ``asyncio.to_thread`` but
  backend-neutral and abandonable on timeout) so they never block the event loop.

* Ask — the approver is called within its timeout: sync, in a daemon worker thread (an ``async`` approver runs
  there in an event loop of its own); async, awaited (a plain approver in a worker thread) under
  ``anyio.move_on_after``. What it returns, raises or fails to return in time goes back to the flow to be judged,
  except an exception the approver declares as suspending (``approver.suspends``: LangGraph's interrupt) — that
  propagates, before anything was minted, so a graph can pause and resume.
* RecordApproval — ``recorder(record)`` (the broker's ``record_approval``), awaited on the async side.

Cancellation (and KeyboardInterrupt/SystemExit) during the body is reported to the flow as a ``cancelled``
outcome, the flow's release runs, and the driver re-raises the original exception afterwards.

Safety net: every credential a flow minted is tracked until its release has been attempted; if the flow ends
abnormally (a bug), the driver releases what is left. The task's registry additionally keeps credentials whose
release failed, for :meth:`Task.close` to retry.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..errors import AgentWritError
from ._approval import ApprovalAnswer, Ask, RecordApproval, RecordOutcome, audit_record
from ._context import CURRENT
from ._effects import AsyncCallMinter, CallFlow, CallMinter, Mint, MintOutcome, ReleaseOutcome, Run, RunOutcome
from ._flow import LiveCall
from ._result import ToolResult
from ._tool import _is_async

__all__ = ["AsyncDriver", "LiveRegistry", "SyncDriver", "obtain_shielded", "release_now", "release_shielded"]


class LiveRegistry:
    """Credentials minted and not (successfully) released yet, by jti. Thread-safe."""

    def __init__(self) -> None:
        self._live: dict[str, LiveCall] = {}
        self._lock = threading.Lock()

    def add(self, live: LiveCall) -> None:
        with self._lock:
            self._live[live.credential.claims.jti] = live

    def discard(self, jti: str) -> None:
        with self._lock:
            self._live.pop(jti, None)

    def snapshot(self) -> list[LiveCall]:
        with self._lock:
            return list(self._live.values())

    def __len__(self) -> int:
        return len(self._live)


def release_now(credential: Any) -> tuple[bool, Exception | None]:
    """Release at the broker: (this release killed the token, the error when it did not go through)."""
    try:
        killed = credential.release()
    except Exception as exc:
        return False, exc
    return bool(killed), None


async def release_shielded(credential: Any) -> tuple[bool, Exception | None]:
    """See :func:`release_now`; shielded, so a release completes even while the caller is being cancelled."""
    killed: Any = False
    error: Exception | None = None
    with anyio.CancelScope(shield=True):
        try:
            killed = await credential.release()
        except Exception as exc:
            error = exc
    return bool(killed), error


async def obtain_shielded(obtain: Callable[[], Awaitable[Any]]) -> tuple[Any, AgentWritError | None]:
    """Await a mint, registration or delegation to its end even under cancellation: (credential, error).

    A credential that reached the broker is then seen, and released, rather than left alive to its TTL.
    """
    credential: Any = None
    error: AgentWritError | None = None
    with anyio.CancelScope(shield=True):
        try:
            credential = await obtain()
        except AgentWritError as exc:
            error = exc
    return credential, error


Recorder = Callable[[dict[str, object]], Any]
"""Where approval decisions are recorded: ``Broker.record_approval`` (or the async one); True when recorded."""


class _DriverBase:
    """Bookkeeping both drivers share; none of it does I/O.

    ``after_mint`` runs after every mint attempt, before the flow records it (the task puts the launch tokens the
    mint used or created in the trace there, so they come before the ``minted`` they made possible).
    """

    def __init__(
        self,
        registry: LiveRegistry,
        clock: Callable[[], float],
        recorder: Recorder | None = None,
        after_mint: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.recorder = recorder
        self.after_mint = after_mint

    def _mint_failed(self, error: AgentWritError, started: float) -> MintOutcome:
        if self.after_mint is not None:
            self.after_mint()
        return MintOutcome(None, error, started, self.clock())

    @staticmethod
    def _answered(ask: Ask, finished: bool, value: Any, error: BaseException | None) -> ApprovalAnswer:
        """The approver's answer for the flow; a suspending exception (or a non-Exception) propagates instead."""
        if error is not None and (
            not isinstance(error, Exception) or isinstance(error, getattr(ask.approver, "suspends", ()))
        ):
            raise error
        return ApprovalAnswer(value if finished else None, error, not finished, time.time())

    @staticmethod
    def _recorded(recorded: Any, error: AgentWritError | None) -> RecordOutcome:
        if error is not None:
            return RecordOutcome("failed", type(error).__name__)
        return RecordOutcome("broker" if recorded else "trace")

    def _minted(self, mint: Mint, credential: Any, started: float, pending: dict[str, Any]) -> MintOutcome:
        if self.after_mint is not None:
            self.after_mint()
        ended = self.clock()
        self.registry.add(LiveCall(credential, mint.tool, mint.call_id, mint.scopes, ended))
        pending[credential.claims.jti] = credential
        return MintOutcome(credential, None, started, ended)

    def _released(self, credential: Any, killed: bool, error: BaseException | None) -> ReleaseOutcome:
        if error is None:
            self.registry.discard(credential.claims.jti)
        return ReleaseOutcome(killed, error, self.clock())

    def _run_failed(self, exc: BaseException, started: float) -> RunOutcome:
        if isinstance(exc, Exception):
            return RunOutcome("error", None, exc, started, self.clock())
        return RunOutcome("cancelled", None, exc, started, self.clock())


def _in_thread(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any, BaseException | None]:
    """Run ``fn`` in a daemon thread with this context; (finished, value, error). Not finished = timed out."""
    context = contextvars.copy_context()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = context.run(fn)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name="agentwrit-tool", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return False, None, None
    return True, box.get("value"), box.get("error")


class SyncDriver(_DriverBase):
    """Carries out flows for a :class:`~agentwrit_tools.client.Broker`; ``launcher`` is where mints go."""

    def __init__(
        self,
        launcher: CallMinter,
        registry: LiveRegistry,
        clock: Callable[[], float],
        recorder: Recorder | None = None,
        after_mint: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(registry, clock, recorder, after_mint)
        self.launcher = launcher

    def drive(self, flow: CallFlow) -> ToolResult:
        pending: dict[str, Any] = {}
        interrupt: BaseException | None = None
        outcome: Any = None
        try:
            while True:
                try:
                    effect = flow.send(outcome)
                except StopIteration as stop:
                    result: ToolResult = stop.value
                    break
                if isinstance(effect, Mint):
                    outcome = self._mint(effect, pending)
                elif isinstance(effect, Run):
                    outcome = self._run(effect)
                    if outcome.status == "cancelled":
                        interrupt = outcome.error
                elif isinstance(effect, Ask):
                    outcome = self._ask(effect)
                elif isinstance(effect, RecordApproval):
                    outcome = self._record(effect)
                else:
                    outcome = self._release(effect.credential, pending)
        finally:
            flow.close()
            for credential in list(pending.values()):  # only after an abnormal end of the flow
                self._release(credential, pending)
        if interrupt is not None:
            raise interrupt
        return result

    def _mint(self, mint: Mint, pending: dict[str, Any]) -> MintOutcome:
        started = self.clock()
        try:
            credential = self.launcher.mint(list(mint.scopes), **mint.options())
        except AgentWritError as exc:
            return self._mint_failed(exc, started)
        return self._minted(mint, credential, started, pending)

    def _run(self, run: Run) -> RunOutcome:
        token = CURRENT.set(run.credential)
        started = self.clock()
        try:
            if run.timeout is None:
                value = run.tool.fn(**run.kwargs)
            else:
                finished, value, error = _in_thread(functools.partial(run.tool.fn, **run.kwargs), run.timeout)
                if not finished:
                    return RunOutcome("timeout", None, None, started, self.clock())
                if error is not None:
                    raise error
        except BaseException as exc:
            return self._run_failed(exc, started)
        finally:
            CURRENT.reset(token)
        return RunOutcome("ok", value, None, started, self.clock())

    def _release(self, credential: Any, pending: dict[str, Any]) -> ReleaseOutcome:
        pending.pop(credential.claims.jti, None)
        return self._released(credential, *release_now(credential))

    def release(self, credential: Any) -> ReleaseOutcome:
        """Release outside a flow (task close)."""
        return self._release(credential, {})

    def _ask(self, ask: Ask) -> ApprovalAnswer:
        approver, request = ask.approver, ask.request
        if _is_async(approver):
            call: Callable[[], Any] = functools.partial(anyio.run, cast(Any, approver), request)
        else:
            call = functools.partial(approver, request)
        return self._answered(ask, *_in_thread(call, ask.timeout))

    def _record(self, effect: RecordApproval) -> RecordOutcome:
        if self.recorder is None:
            return RecordOutcome("trace")
        try:
            recorded = self.recorder(audit_record(effect.request, effect.verdict))
        except AgentWritError as exc:
            return self._recorded(None, exc)
        return self._recorded(recorded, None)


class AsyncDriver(_DriverBase):
    """Carries out flows for an :class:`~agentwrit_tools.client.AsyncBroker`; ``launcher`` is where mints go."""

    def __init__(
        self,
        launcher: AsyncCallMinter,
        registry: LiveRegistry,
        clock: Callable[[], float],
        recorder: Recorder | None = None,
        after_mint: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(registry, clock, recorder, after_mint)
        self.launcher = launcher

    async def drive(self, flow: CallFlow) -> ToolResult:
        pending: dict[str, Any] = {}
        interrupt: BaseException | None = None
        outcome: Any = None
        try:
            while True:
                try:
                    effect = flow.send(outcome)
                except StopIteration as stop:
                    result: ToolResult = stop.value
                    break
                if isinstance(effect, Mint):
                    outcome = await self._mint(effect, pending)
                elif isinstance(effect, Run):
                    outcome = await self._run(effect)
                    if outcome.status == "cancelled":
                        interrupt = outcome.error
                elif isinstance(effect, Ask):
                    outcome = await self._ask(effect)
                elif isinstance(effect, RecordApproval):
                    outcome = await self._record(effect)
                else:
                    outcome = await self._release(effect.credential, pending)
        finally:
            flow.close()
            for credential in list(pending.values()):  # only after an abnormal end of the flow
                await self._release(credential, pending)
        if interrupt is not None:
            raise interrupt
        return result

    async def _mint(self, mint: Mint, pending: dict[str, Any]) -> MintOutcome:
        started = self.clock()
        credential, error = await obtain_shielded(lambda: self.launcher.mint(list(mint.scopes), **mint.options()))
        if error is not None:
            return self._mint_failed(error, started)
        return self._minted(mint, credential, started, pending)

    async def _run(self, run: Run) -> RunOutcome:
        token = CURRENT.set(run.credential)
        started = self.clock()
        value: Any = None
        try:
            # A call cancelled while its mint was shielded stops here, before its body starts.
            await anyio.lowlevel.checkpoint_if_cancelled()
            with anyio.move_on_after(run.timeout) as deadline:
                if run.tool.is_async:
                    value = await run.tool.fn(**run.kwargs)
                else:
                    call = functools.partial(run.tool.fn, **run.kwargs)
                    value = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
            if deadline.cancelled_caught:
                return RunOutcome("timeout", None, None, started, self.clock())
        except BaseException as exc:
            return self._run_failed(exc, started)
        finally:
            CURRENT.reset(token)
        return RunOutcome("ok", value, None, started, self.clock())

    async def _release(self, credential: Any, pending: dict[str, Any]) -> ReleaseOutcome:
        pending.pop(credential.claims.jti, None)
        return self._released(credential, *await release_shielded(credential))

    async def release(self, credential: Any) -> ReleaseOutcome:
        """Release outside a flow (task close)."""
        return await self._release(credential, {})

    async def _ask(self, ask: Ask) -> ApprovalAnswer:
        approver, request = ask.approver, ask.request
        value: Any = None
        error: BaseException | None = None
        with anyio.move_on_after(ask.timeout) as deadline:
            try:
                if _is_async(approver):
                    value = await approver(request)  # type: ignore[misc]
                else:
                    call = functools.partial(approver, request)
                    value = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
            except Exception as exc:
                error = exc
        return self._answered(ask, not deadline.cancelled_caught, value, error)

    async def _record(self, effect: RecordApproval) -> RecordOutcome:
        if self.recorder is None:
            return RecordOutcome("trace")
        try:
            recorded = await self.recorder(audit_record(effect.request, effect.verdict))
        except AgentWritError as exc:
            return self._recorded(None, exc)
        return self._recorded(recorded, None)
