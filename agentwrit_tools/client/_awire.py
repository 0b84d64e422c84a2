"""The async edge of the client's own HTTP/1.1 wire: asyncio connections to one broker, one request at a time each.

Same rules as the sync edge (:mod:`._wire`): an idle connection is reused only if the broker has not closed it
meanwhile, at most ``max_connections`` are open (the others wait their turn, within the timeout), a request leaves
in one write, and only a complete keep-alive answer puts the connection back. Each connection is an
``asyncio.Protocol`` that feeds what arrives straight into its :class:`~._http11.ResponseParser`, so a waiting
request wakes up once, when its answer is complete.

The protocol is asyncio's. Under another event loop (trio through anyio) requests go through ``fallback``, an
httpx-based sender, built on first use.

Cancellation: a request cancelled while in flight leaves its connection in an unknown state, so the connection is
dropped, never reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

import anyio

from ._http11 import Origin, ResponseParser, WireViolation, encode_request
from ._steps import Call, Response
from ._wire import ssl_context_for, unavailable, wire_headers

__all__ = ["AsyncSender", "AsyncWire"]


class AsyncSender(Protocol):
    """What the async driver sends with."""

    async def send(self, call: Call) -> Response: ...

    async def aclose(self) -> None: ...


class _Connection(asyncio.Protocol):
    """One connection; at most one request in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.usable = True
        self._parser: ResponseParser | None = None
        self._done: asyncio.Future[str | None] | None = None
        self.lost: asyncio.Future[None] | None = None  # done once the transport is closed for good

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream transport (uvloop's does not subclass it)
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # nothing asked, something said: not to be trusted with the next request
            self.usable = False
            return
        try:
            complete = parser.feed(data)
        except WireViolation:
            self._settle("RemoteProtocolError")
            return
        if complete:
            self._settle(None)

    def eof_received(self) -> bool | None:
        self.usable = False
        parser = self._parser
        if parser is not None:
            try:
                parser.eof()
            except WireViolation:
                self._settle("ReadError")
            else:
                self._settle(None)
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self._settle("ReadError")
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def _settle(self, failure: str | None) -> None:
        done = self._done
        if done is not None and not done.done():
            done.set_result(failure)

    async def exchange(self, data: bytes, method: str, limit: float) -> tuple[Response | None, str | None]:
        """Send ``data``; the complete response, or why there is none (``ReadTimeout``, ``ReadError``…)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return None, "WriteError"
        loop = asyncio.get_running_loop()
        parser = self._parser = ResponseParser(method)
        done = self._done = loop.create_future()
        timer = loop.call_later(limit, self._settle, "ReadTimeout")
        try:
            transport.write(data)
            failure = await done
        finally:
            timer.cancel()
            self._parser = self._done = None
        if failure is not None or parser.response is None:
            self.usable = False
            return None, failure or "ReadError"
        self.usable = self.usable and parser.keep_alive
        return parser.response, None

    def abort(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AsyncWire:
    """Kept-alive asyncio connections to the broker at ``base_url`` (see :class:`~._wire.SyncWire`).

    Args:
        fallback: builds the sender used when the running event loop is not asyncio's.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_connections: int,
        user_agent: str,
        fallback: Callable[[], AsyncSender],
    ) -> None:
        self.origin = Origin.parse(base_url)
        self._timeout = timeout
        self._user_agent = user_agent
        self._ssl = ssl_context_for(self.origin)
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._closing: set[_Connection] = set()  # dropped, their transports not yet closed for good
        self._busy = 0  # requests holding a connection (or the right to open one)
        self._waiters: deque[asyncio.Future[bool]] = deque()  # requests waiting for one, first come first served
        self._limit = max_connections
        self._make_fallback = fallback
        self._fallback: AsyncSender | None = None
        self.connections_opened = 0  # for tests and diagnostics

    async def send(self, call: Call) -> Response:
        """One request and its complete answer (raises BrokerUnavailable when there is none)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return await self._other_loop(call)
        data = encode_request(
            self.origin, call.method, call.path, params=call.params, headers=wire_headers(call, self._user_agent),
            content=call.content(),
        )  # fmt: skip
        await self._slot(call)
        try:
            connection = await self._connection(call)
            try:
                response, failure = await connection.exchange(data, call.method, self._timeout)
            except BaseException:  # cancelled mid-flight: the connection's state is unknown
                self._drop(connection, abort=True)
                raise
            if response is None:
                self._drop(connection, abort=True)
                raise unavailable(call, failure or "ReadError", sent=True)
            if connection.usable:
                self._idle.append(connection)
            else:
                self._drop(connection)
            return response
        finally:
            self._free_slot()

    async def _slot(self, call: Call) -> None:
        """Take a place among the ``max_connections`` requests in flight, waiting in turn at most the timeout.

        A freed place is handed straight to the first waiter (no semaphore and no cancel scope per wait: with many
        more callers than connections those cost more client CPU than the requests).
        """
        if self._busy < self._limit and not self._waiters:
            self._busy += 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self._timeout, _expire, waiter)
        try:
            granted = await waiter
        except BaseException:  # cancelled while waiting: a place handed over meanwhile goes to the next one
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._free_slot()
            raise
        finally:
            timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if not granted:
            raise unavailable(call, "PoolTimeout", sent=False)

    def _free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the place passes on: _busy is unchanged
                return
        self._busy -= 1

    async def _connection(self, call: Call) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable and connection.transport is not None and not connection.transport.is_closing():
                return connection
            self._drop(connection)
        origin = self.origin
        loop = asyncio.get_running_loop()
        hostname = origin.host if self._ssl is not None else None
        try:
            with anyio.fail_after(self._timeout):
                _, connection = await loop.create_connection(
                    _Connection, origin.host, origin.port, ssl=self._ssl, server_hostname=hostname
                )
        except TimeoutError:
            raise unavailable(call, "ConnectTimeout", sent=False) from None
        except OSError:
            raise unavailable(call, "ConnectError", sent=False) from None
        self._all.add(connection)
        self.connections_opened += 1
        return connection

    def _drop(self, connection: _Connection, *, abort: bool = False) -> None:
        self._all.discard(connection)
        if abort:
            connection.abort()
        elif connection.transport is not None:
            connection.transport.close()
        lost = connection.lost
        if lost is not None and not lost.done():  # aclose waits for it (see there)
            self._closing.add(connection)
            lost.add_done_callback(lambda _: self._closing.discard(connection))

    async def _other_loop(self, call: Call) -> Response:
        if self._fallback is None:
            self._fallback = self._make_fallback()
        return await self._fallback.send(call)

    @property
    def open_connections(self) -> int:
        return len(self._all)

    async def aclose(self) -> None:
        for connection in list(self._all):
            self._drop(connection)
        self._idle.clear()
        # A transport finishes closing on the loop's next turns: wait for that (briefly) — for these and for any
        # dropped earlier (a cancelled request's, say) — so the sockets are closed here and not left to the
        # garbage collector by a loop that ends right after this.
        lost = [c.lost for c in self._closing if c.lost is not None and not c.lost.done()]
        if lost:
            await asyncio.wait(lost, timeout=1.0)
        if self._fallback is not None:
            await self._fallback.aclose()
