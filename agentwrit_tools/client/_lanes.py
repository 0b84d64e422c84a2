"""``LaneTransport``: the async client's connections, as single-connection lanes handed out first come first served.

httpcore's pool keeps every waiting request and every connection in lists and, whenever a request arrives or a
response is closed, re-checks each connection (``has_expired`` reads socket options and polls the socket)
against each waiting request. With a few dozen concurrent calls that bookkeeping cost more client CPU than the
calls themselves: one guarded call used ~2.5 ms of CPU alone and ~5.8 ms at 64 concurrent calls over a 16-slot
pool. Here each lane is an ``httpx.AsyncHTTPTransport`` limited to one keep-alive connection, so its pool never
has more than one request and one connection to look at; which lane serves a request is decided once, by
taking an idle one off a stack (the most recently used: its connection is the freshest) or opening a new lane
while fewer than ``lanes`` exist. Requests beyond that wait, in order, at most the request's pool timeout.

Lanes share one SSL context (building one takes ~20 ms), and are only opened when concurrency needs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import anyio
import httpx

__all__ = ["LaneTransport"]


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that hands its lane back once closed (httpx closes every response it reads)."""

    def __init__(self, stream: Any, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class LaneTransport(httpx.AsyncBaseTransport):
    """Up to ``lanes`` single-connection transports; a request takes an idle one or waits its turn.

    Args:
        lanes: the most connections (and requests in flight) at once.
        make_lane: builds one lane (default: an ``httpx.AsyncHTTPTransport`` with one keep-alive connection and
            the shared SSL context); tests pass their own.
    """

    def __init__(self, lanes: int, *, make_lane: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        self._size = lanes
        self._make = make_lane or self._default_lane
        self._ssl: Any = None
        self._idle: list[httpx.AsyncBaseTransport] = []
        self._all: list[httpx.AsyncBaseTransport] = []
        self._slots: anyio.Semaphore | None = None  # made on first use, inside the event loop

    def _default_lane(self) -> httpx.AsyncBaseTransport:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        single = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncHTTPTransport(verify=self._ssl, limits=single)

    @property
    def open_lanes(self) -> int:
        return len(self._all)

    def _give_back(self, lane: httpx.AsyncBaseTransport) -> None:
        self._idle.append(lane)
        assert self._slots is not None  # noqa: S101 - a lane is only out after a slot was taken
        self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        slots = self._slots
        if slots is None:
            slots = self._slots = anyio.Semaphore(self._size)
        wait = (request.extensions.get("timeout") or {}).get("pool")
        try:
            with anyio.fail_after(wait):
                await slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection became free in time", request=request) from None
        if self._idle:
            lane = self._idle.pop()
        else:
            lane = self._make()
            self._all.append(lane)
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            self._give_back(lane)
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, lambda: self._give_back(lane)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        lanes, self._all, self._idle = self._all, [], []
        for lane in lanes:
            await lane.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()
