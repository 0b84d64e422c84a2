"""``Trace``: stamps events with a sequence number and both clocks, keeps them, and fans them out to sinks.

A failing sink must not fail the tool call it is reporting on (nor skip the release that follows), so sink
errors are logged by class name and swallowed. Sinks run in order under one lock: a JSON-lines file never gets
two events interleaved, and ``seq`` order is delivery order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ._events import TraceEvent
from ._sinks import ListSink, Sink

__all__ = ["Clock", "Trace"]

E = TypeVar("E", bound=TraceEvent)
log = logging.getLogger("agentwrit_tools.trace")


class Clock:
    """The two clocks of a trace; tests pass fakes to get exact timings."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.monotonic = monotonic
        self.wall = wall


class Trace:
    """The event stream of one task.

    Args:
        task_id: stamped on every event.
        orch_id: stamped on every event.
        sinks: extra destinations; every event is also kept in :attr:`events`.
        clock: where ``at`` and ``time`` come from.
    """

    def __init__(self, *, task_id: str, orch_id: str, sinks: Iterable[Sink] = (), clock: Clock | None = None) -> None:
        self.task_id = task_id
        self.orch_id = orch_id
        self.clock = clock or Clock()
        self.events = ListSink()
        self._sinks: list[Sink] = [self.events, *sinks]
        self._seq = 0
        self._lock = threading.Lock()

    def add_sink(self, sink: Sink) -> None:
        """Send every later event to ``sink`` as well."""
        with self._lock:
            self._sinks.append(sink)

    def now(self) -> float:
        """Monotonic seconds, on this trace's clock (use it for timings that end up in events)."""
        return self.clock.monotonic()

    def emit(self, kind: type[E], *, at: float | None = None, **fields: Any) -> E:
        """Build an event of ``kind``, stamp it (``seq``, ``at``, ``time``, ids) and deliver it.

        Args:
            kind: the event class.
            at: monotonic time it happened, when measured earlier; ``time`` is shifted to match.
            fields: the event's own fields (``tool``, ``scope``, ``jti``…).
        """
        with self._lock:
            now = self.clock.monotonic()
            wall = self.clock.wall()
            when = now if at is None else at
            self._seq += 1
            event = kind(
                seq=self._seq,
                at=when,
                time=wall - (now - when),
                task_id=self.task_id,
                orch_id=self.orch_id,
                **fields,
            )
            for sink in self._sinks:
                try:
                    sink(event)
                except Exception as exc:  # a sink must never break the call it reports on
                    log.warning("trace sink %r failed on a %s event (%s)", sink, event.type, type(exc).__name__)
            return event
