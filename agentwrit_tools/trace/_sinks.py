"""Where trace events go: a list, a callback, JSON lines, or Server-Sent Events.

A sink is any callable taking one event. The classes here cover the common destinations; a trace may have
several. They write what :meth:`TraceEvent.to_dict` gives, which never holds a token, so a sink needs no
redaction of its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ._events import TraceEvent

__all__ = ["CallbackSink", "JsonLinesSink", "ListSink", "Sink", "SseSink", "event_json", "format_sse"]

Sink = Callable[[TraceEvent], None]
"""Anything that accepts an event. It should be quick: it runs inside the tool call."""


def event_json(event: TraceEvent) -> str:
    """The event as one line of compact JSON (newlines inside strings are escaped, so it stays one line)."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False, default=str)


def format_sse(event: TraceEvent) -> str:
    """The event as one Server-Sent Events message: ``id:``, ``event:`` and ``data:`` lines and a blank line.

    ``id`` is the event's ``seq``, so a browser reconnecting with ``Last-Event-ID`` can tell what it missed.
    """
    return f"id: {event.seq}\nevent: {event.type}\ndata: {event_json(event)}\n\n"


class ListSink:
    """Keeps every event in memory, in order. Iterable and indexable like the list it wraps."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: TraceEvent) -> None:
        with self._lock:
            self.events.append(event)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(list(self.events))

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> TraceEvent:
        return self.events[index]

    def of_type(self, *types: str) -> list[TraceEvent]:
        """The events whose ``type`` is one of ``types``."""
        return [e for e in self.events if e.type in types]


class CallbackSink:
    """Calls ``callback(event)``; optionally only for some event types."""

    def __init__(self, callback: Callable[[TraceEvent], Any], *, types: frozenset[str] | set[str] | None = None):
        self._callback = callback
        self._types = frozenset(types) if types is not None else None

    def __call__(self, event: TraceEvent) -> None:
        if self._types is None or event.type in self._types:
            self._callback(event)


class _TextSink:
    """Writes text to a path (opened for appending, closed by :meth:`close`) or to an open text stream."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, (str, Path)):
            self._stream: IO[str] = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
            self._owns = True
        else:
            self._stream = target
            self._owns = False
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def close(self) -> None:
        """Close the file if this sink opened it (a stream passed in stays open)."""
        if self._owns:
            self._stream.close()

    def __enter__(self) -> _TextSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonLinesSink(_TextSink):
    """One JSON object per line, flushed per event, so ``tail -f`` and log shippers see calls as they happen."""

    def __call__(self, event: TraceEvent) -> None:
        self._write(event_json(event) + "\n")


class SseSink:
    """Formats events as Server-Sent Events and hands each message to ``write`` (a stream or a callable).

    With a web framework, pass a callable that puts the text on the response's queue; with a stream, each
    message is written and flushed.
    """

    def __init__(self, write: Callable[[str], Any] | IO[str]) -> None:
        if callable(write):
            self._write: Callable[[str], Any] = write
        else:
            stream = write

            def to_stream(text: str) -> None:
                stream.write(text)
                stream.flush()

            self._write = to_stream
        self._lock = threading.Lock()

    def __call__(self, event: TraceEvent) -> None:
        with self._lock:
            self._write(format_sse(event))
