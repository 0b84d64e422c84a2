"""The two I/O edges: one driver loop each, sync and async.

This is the only code that exists twice. A driver sends :class:`Call` steps with its sender (our own HTTP/1.1
wire, or httpx: see :mod:`._clients`), sleeps on :class:`Sleep`, runs :class:`Exclusive` sub-flows under a named
lock, and feeds results (or our typed errors) back into the flow. Everything a flow decides — retries, logins,
verification — is already in the flow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any, TypeVar

import anyio

from ..errors import AgentWritError
from ._awire import AsyncSender
from ._senders import SyncSender
from ._steps import Call, Flow, Sleep, Trips

__all__ = ["USER_AGENT", "AsyncDriver", "SyncDriver"]

T = TypeVar("T")

USER_AGENT = "agentwrit-tools/0.1.0"


class SyncDriver:
    """Drives flows with a sync sender; ``Exclusive`` steps take a ``threading.Lock``."""

    def __init__(self, base_url: str, sender: SyncSender) -> None:
        self.base_url = base_url
        self.sender = sender
        self._locks: dict[Hashable, threading.Lock] = {}

    def run(self, flow: Flow[T], trips: Trips | None = None) -> T:
        """Drive ``flow`` to its end; ``trips`` (when given) counts the requests it sent, sub-flows included."""
        result: Any = None
        error: AgentWritError | None = None
        try:
            while True:
                try:
                    step = flow.send(result) if error is None else flow.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                result, error = None, None
                try:
                    if isinstance(step, Call):
                        if trips is not None:
                            trips.count += 1
                        result = self.sender.send(step)
                    elif isinstance(step, Sleep):
                        time.sleep(step.seconds)
                    else:
                        with self._locks.setdefault(step.key, threading.Lock()):
                            result = self.run(step.flow, trips)
                except AgentWritError as exc:
                    error = exc
        finally:
            flow.close()

    def close(self) -> None:
        self.sender.close()


class AsyncDriver:
    """Drives flows with an async sender; ``Exclusive`` steps take an ``anyio.Lock``."""

    def __init__(self, base_url: str, sender: AsyncSender) -> None:
        self.base_url = base_url
        self.sender = sender
        self._locks: dict[Hashable, anyio.Lock] = {}

    async def run(self, flow: Flow[T], trips: Trips | None = None) -> T:
        """See :meth:`SyncDriver.run`."""
        result: Any = None
        error: AgentWritError | None = None
        try:
            while True:
                try:
                    step = flow.send(result) if error is None else flow.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                result, error = None, None
                try:
                    if isinstance(step, Call):
                        if trips is not None:
                            trips.count += 1
                        result = await self.sender.send(step)
                    elif isinstance(step, Sleep):
                        await anyio.sleep(step.seconds)
                    else:
                        lock = self._locks.get(step.key)
                        if lock is None:
                            lock = self._locks[step.key] = anyio.Lock()
                        async with lock:
                            result = await self.run(step.flow, trips)
                except AgentWritError as exc:
                    error = exc
        finally:
            flow.close()

    async def aclose(self) -> None:
        await self.sender.aclose()
