"""The sync edge of the client's own HTTP/1.1 wire: kept-alive sockets to one broker, one request at a time each.

A request takes an idle connection (the most recently used, checked not to have been closed by the broker while
it sat idle) or opens one while fewer than ``max_connections`` exist, else waits its turn for at most the
timeout. The request leaves in one ``sendall``; the answer is read until :class:`~._http11.ResponseParser` says it
is complete. A connection goes back to the pool only after a complete answer that allows keep-alive; anything
else (an error, a timeout, a malformed answer) closes it.

Failures become :class:`~agentwrit_tools.errors.BrokerUnavailable` named like httpx's (``ConnectError``,
``ReadTimeout``…), with ``sent`` False only when the request certainly never left: the connection could not be
made, or no connection became free in time. :mod:`._awire` is the async twin.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import socket
import ssl
import threading
import time

from ..errors import BrokerUnavailable
from ._http11 import Origin, ResponseParser, WireViolation, encode_request
from ._steps import Call, Response

__all__ = ["SyncWire", "is_stale", "ssl_context_for", "unavailable", "wire_headers"]

_READ = 65536


def wire_headers(call: Call, user_agent: str) -> list[tuple[str, str]]:
    """The headers every request carries (the body's ``Content-Length`` is added when it is encoded)."""
    headers = [("User-Agent", user_agent), ("X-Request-ID", secrets.token_hex(8))]
    if call.bearer is not None:
        headers.append(("Authorization", f"Bearer {call.bearer}"))
    if call.body is not None:
        headers.append(("Content-Type", "application/json"))
    return headers


def unavailable(call: Call, kind: str, *, sent: bool) -> BrokerUnavailable:
    """No answer: named by what failed, never by a foreign exception's text (it may quote an address)."""
    return BrokerUnavailable(
        f"{call.method} {call.path}: no answer from the broker ({kind})", method=call.method, path=call.path, sent=sent
    )


def is_stale(sock: socket.socket) -> bool:
    """An idle connection that has something to read was closed by the broker (or sent what nobody asked for)."""
    try:
        poller = select.poll()
    except AttributeError:  # pragma: no cover - platforms without poll()
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def ssl_context_for(origin: Origin) -> ssl.SSLContext | None:
    """The TLS context httpx would use (same trust store and environment), for ``https`` brokers only."""
    if origin.scheme != "https":
        return None
    import httpx

    return httpx.create_ssl_context()


class SyncWire:
    """Kept-alive connections to the broker at ``base_url``, shared by the threads of one :class:`Broker`.

    Args:
        base_url: the broker URL (validated by the client's settings).
        timeout: seconds for connecting, each write and read, and waiting for a free connection.
        max_connections: the most connections open at once.
        user_agent: the ``User-Agent`` header.
    """

    def __init__(self, base_url: str, *, timeout: float, max_connections: int, user_agent: str) -> None:
        self.origin = Origin.parse(base_url)
        self._timeout = timeout
        self._limit = max_connections
        self._user_agent = user_agent
        self._ssl = ssl_context_for(self.origin)
        self._idle: list[socket.socket] = []
        self._open = 0
        self._closed = False
        self._cond = threading.Condition()
        self.connections_opened = 0  # for tests and diagnostics

    def send(self, call: Call) -> Response:
        """One request and its complete answer.

        Raises:
            BrokerUnavailable: no (complete, well-formed) answer.
        """
        data = encode_request(
            self.origin, call.method, call.path, params=call.params, headers=wire_headers(call, self._user_agent),
            content=call.content(),
        )  # fmt: skip
        sock = self._acquire(call)
        reusable = False
        try:
            response, reusable = self._exchange(sock, call, data)
        finally:
            self._give_back(sock, reusable)
        return response

    def _exchange(self, sock: socket.socket, call: Call, data: bytes) -> tuple[Response, bool]:
        sock.settimeout(self._timeout)
        try:
            sock.sendall(data)
        except TimeoutError:
            raise unavailable(call, "WriteTimeout", sent=True) from None
        except OSError:
            raise unavailable(call, "WriteError", sent=True) from None
        parser = ResponseParser(call.method)
        try:
            while True:
                chunk = sock.recv(_READ)
                if not chunk:
                    parser.eof()
                    break
                if parser.feed(chunk):
                    break
        except TimeoutError:
            raise unavailable(call, "ReadTimeout", sent=True) from None
        except OSError:
            raise unavailable(call, "ReadError", sent=True) from None
        except WireViolation:
            raise unavailable(call, "RemoteProtocolError", sent=True) from None
        assert parser.response is not None  # noqa: S101 - the loop ends only on a complete response
        return parser.response, parser.keep_alive

    # -- the pool ----------------------------------------------------------------------------------------------

    def _acquire(self, call: Call) -> socket.socket:
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self._closed:
                    raise unavailable(call, "ClientClosed", sent=False)
                while self._idle:
                    sock = self._idle.pop()
                    if not is_stale(sock):
                        return sock
                    self._discard(sock)
                if self._open < self._limit:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    raise unavailable(call, "PoolTimeout", sent=False)
        try:
            return self._connect(call)
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _connect(self, call: Call) -> socket.socket:
        origin = self.origin
        try:
            sock = socket.create_connection((origin.host, origin.port), timeout=self._timeout)
        except TimeoutError:
            raise unavailable(call, "ConnectTimeout", sent=False) from None
        except OSError:
            raise unavailable(call, "ConnectError", sent=False) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=origin.host)
        except (OSError, ssl.SSLError):
            sock.close()
            raise unavailable(call, "ConnectError", sent=False) from None
        self.connections_opened += 1
        return sock

    def _discard(self, sock: socket.socket) -> None:
        """Close ``sock`` and free its place (caller holds the condition)."""
        _close_quietly(sock)
        self._open -= 1

    def _give_back(self, sock: socket.socket, reusable: bool) -> None:
        with self._cond:
            if reusable and not self._closed:
                self._idle.append(sock)
            else:
                self._discard(sock)
            self._cond.notify()

    @property
    def open_connections(self) -> int:
        return self._open

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            for sock in idle:
                self._discard(sock)
            self._cond.notify_all()


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
