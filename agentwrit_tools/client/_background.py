"""Work done off the callers' path: refilling the nonce pool, fetching a task's launch token ahead of its first call.

Each job is a flow, run by the broker client's own driver (so it uses the same connections, sessions and retry
rules) and named by a key: a job whose key is already queued or running is not queued again. A job's failure is
logged and dropped — what it would have fetched ahead is then fetched by the call that needs it, on its path, as
without a fast path. Nothing here holds a credential: a job's results go where the flow puts them (the pool, the
task's launcher), and whoever needs one of them first can :meth:`wait` for the job.

* Sync: one daemon thread per broker client, started with the first job; :meth:`SyncBackground.close` stops it.
* Async: one asyncio task per job on the running loop; under another event loop (trio) nothing runs in the
  background and every call fetches what it needs itself. :meth:`AsyncBackground.aclose` cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import anyio

from ._drivers import AsyncDriver, SyncDriver
from ._steps import Flow

__all__ = ["AsyncBackground", "SyncBackground"]

log = logging.getLogger("agentwrit_tools.client")

Job = Callable[[], Flow[Any]]


def _failed(key: Hashable, exc: BaseException) -> None:
    log.debug("background job %r failed (%s); the call that needs it will fetch it itself", key, type(exc).__name__)


class SyncBackground:
    """A daemon thread running one job at a time for a sync broker client."""

    def __init__(self, driver: SyncDriver) -> None:
        self._driver = driver
        self._queue: deque[tuple[Hashable, Job]] = deque()
        self._pending: set[Hashable] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, key: Hashable, job: Job, *, urgent: bool = False) -> bool:
        """Queue ``job`` unless one with ``key`` is queued or running; False when it was not queued.

        ``urgent`` jobs go ahead of the queue (a launch token a call may soon wait for, before nonce refills).
        """
        with self._cond:
            if self._closed or key in self._pending:
                return False
            self._pending.add(key)
            if urgent:
                self._queue.appendleft((key, job))
            else:
                self._queue.append((key, job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="agentwrit-prefetch", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    def wait(self, key: Hashable, timeout: float) -> bool:
        """Wait until the job named ``key`` (if any) has finished; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: key not in self._pending, timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    self._pending.clear()
                    self._cond.notify_all()
                    return
                key, job = self._queue.popleft()
            try:
                self._driver.run(job())
            except Exception as exc:  # a failed prefetch is not an error: the call fetches on its own path
                _failed(key, exc)
            finally:
                with self._cond:
                    self._pending.discard(key)
                    self._cond.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; let the running one finish (at most ``timeout`` seconds); drop the queued ones."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


class AsyncBackground:
    """Background jobs of an async broker client, as asyncio tasks."""

    def __init__(self, driver: AsyncDriver) -> None:
        self._driver = driver
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._closed = False

    def submit(self, key: Hashable, job: Job, *, urgent: bool = False) -> bool:
        """Start ``job`` unless one with ``key`` is running (or the loop is not asyncio's); False when not started.

        Jobs run concurrently here, so ``urgent`` changes nothing.
        """
        running = self._tasks.get(key)
        if self._closed or (running is not None and not running.done()):
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._tasks[key] = loop.create_task(self._run(key, job))
        return True

    async def _run(self, key: Hashable, job: Job) -> None:
        try:
            await self._driver.run(job())
        except Exception as exc:
            _failed(key, exc)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def wait(self, key: Hashable) -> None:
        """Wait until the job named ``key`` (if any) has finished, even while the caller is being cancelled."""
        task = self._tasks.get(key)
        if task is not None:
            with anyio.CancelScope(shield=True):
                await asyncio.wait([task])

    async def aclose(self) -> None:
        """Cancel what is still running and wait for it to stop."""
        self._closed = True
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)
