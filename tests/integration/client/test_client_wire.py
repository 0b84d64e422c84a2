"""The client's own HTTP/1.1 wire over real loopback sockets, against a scripted server that misbehaves on purpose.

What it must get right beyond the happy path the rest of the suite walks: a kept-alive connection the broker
closed while idle is noticed and replaced, a request that could not leave is reported as not sent (so any call may
be retried), one that left and got no (well-formed) answer as sent, waiting for a free connection is bounded, a
cancelled request's connection is never reused, and a proxy from the environment hands the requests to httpx.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import anyio
import pytest

from agentwrit_tools import AsyncBroker, Broker, BrokerUnavailable
from agentwrit_tools.client import RetryPolicy
from agentwrit_tools.client._awire import AsyncWire
from agentwrit_tools.client._clients import proxied
from agentwrit_tools.client._senders import AsyncHttpxSender, HttpxSender
from agentwrit_tools.client._steps import Call
from agentwrit_tools.client._wire import SyncWire

HEALTH = b'{"status":"ok","version":"2.0.0","uptime":1,"db_connected":true,"audit_events_count":0}'
NO_RETRY = RetryPolicy(transport_retries=0)
HEALTH_CALL = Call("GET", "/v1/health", idempotent=True)

Answer = Callable[[int, str], bytes | None]  # (request number, request line) -> raw answer, or None: hang up


def ok(body: bytes = HEALTH, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Scripted:
    """A loopback HTTP/1.1 server whose answers come from ``answer``; it counts connections and requests."""

    def __init__(self, answer: Answer, *, delay: float = 0.0) -> None:
        self.answer = answer
        self.delay = delay
        self.requests: list[str] = []
        self.heads: list[bytes] = []
        self._open: list[socket.socket] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = dict(line.partition(": ")[::2] for line in lines[1:])
                length = int(fields.get("Content-Length", "0"))
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                with self._lock:
                    number = len(self.requests)
                    self.requests.append(lines[0])
                    self.heads.append(head)
                if self.delay:
                    time.sleep(self.delay)
                raw = self.answer(number, lines[0])
                if raw is None:
                    return
                try:
                    conn.sendall(raw)
                except OSError:
                    return

    def hang_up(self) -> None:
        """Close the server's end of every connection (what a keep-alive timeout does to an idle one)."""
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.hang_up()
        self._sock.close()


@contextmanager
def scripted(answer: Answer, **options: float) -> Iterator[Scripted]:
    server = Scripted(answer, **options)
    try:
        yield server
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- sync ------------------------------------------------------------------------------------------------------------


def test_requests_share_one_kept_alive_connection_and_carry_the_contract_headers() -> None:
    with scripted(lambda n, line: ok()) as server, Broker(server.url) as broker:
        for _ in range(5):
            assert broker.health().status == "ok"
        assert isinstance(broker._driver.sender, SyncWire)
    assert server.connections == 1
    assert server.requests == ["GET /v1/health HTTP/1.1"] * 5
    heads = [head.decode().lower() for head in server.heads]
    assert all("user-agent: agentwrit-tools/" in head and "x-request-id: " in head for head in heads)
    assert all("cookie" not in head for head in heads)


def test_an_idle_connection_the_broker_closed_is_replaced_not_reused() -> None:
    with scripted(lambda n, line: ok()) as server, Broker(server.url, retry=NO_RETRY) as broker:
        broker.health()
        server.hang_up()
        time.sleep(0.05)
        assert broker.health().status == "ok"  # no error: the dead connection was noticed before it was used
    assert server.connections == 2


def test_connection_close_in_an_answer_is_honoured() -> None:
    close = b"Connection: close\r\n"
    with scripted(lambda n, line: ok(extra=close)) as server, Broker(server.url) as broker:
        broker.health()
        broker.health()
    assert server.connections == 2


def test_a_refused_connection_is_not_sent() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with (
        Broker(url, retry=RetryPolicy(transport_retries=2, backoff=0.001)) as broker,
        pytest.raises(BrokerUnavailable) as info,
    ):
        broker.health()
    assert info.value.sent is False
    assert "ConnectError" in str(info.value)


def test_a_hang_up_after_the_request_left_is_sent_and_a_garbled_answer_too() -> None:
    with scripted(lambda n, line: None) as server, Broker(server.url, retry=NO_RETRY) as broker:
        with pytest.raises(BrokerUnavailable) as info:
            broker.health()
        assert info.value.sent is True
    garbled = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
    with (
        scripted(lambda n, line: garbled) as server,
        Broker(server.url, retry=NO_RETRY) as broker,
        pytest.raises(BrokerUnavailable) as info,
    ):
        broker.health()
    assert info.value.sent is True
    assert "RemoteProtocolError" in str(info.value)


def test_a_slow_answer_times_out_as_sent() -> None:
    with (
        scripted(lambda n, line: ok(), delay=0.5) as server,
        Broker(server.url, timeout=0.1, retry=NO_RETRY) as broker,
        pytest.raises(BrokerUnavailable) as info,
    ):
        broker.health()
    assert info.value.sent is True
    assert "ReadTimeout" in str(info.value)


def test_waiting_for_a_free_connection_is_bounded_and_not_sent() -> None:
    outcomes: list[object] = []
    with scripted(lambda n, line: ok(), delay=0.4) as server:
        broker = Broker(server.url, max_connections=1, timeout=0.1, retry=NO_RETRY)
        wire = broker._driver.sender
        assert isinstance(wire, SyncWire)
        wire._timeout = 2.0  # the first request may take its time; only the wait for a connection is short

        def first() -> None:
            outcomes.append(broker.health())

        thread = threading.Thread(target=first)
        thread.start()
        time.sleep(0.1)
        wire._timeout = 0.1
        with pytest.raises(BrokerUnavailable) as info:
            broker.health()
        thread.join()
        broker.close()
    assert info.value.sent is False
    assert "PoolTimeout" in str(info.value)
    assert len(outcomes) == 1


def test_a_closed_wire_refuses_without_sending() -> None:
    with scripted(lambda n, line: ok()) as server:
        wire = SyncWire(server.url, timeout=1.0, max_connections=2, user_agent="t")
        wire.send(HEALTH_CALL)
        wire.close()
        assert wire.open_connections == 0
        with pytest.raises(BrokerUnavailable) as info:
            wire.send(HEALTH_CALL)
    assert info.value.sent is False


def test_a_proxy_in_the_environment_hands_the_requests_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert proxied("http://broker.internal:8080")
    with Broker("http://broker.internal:8080") as broker:
        assert isinstance(broker._driver.sender, HttpxSender)
    monkeypatch.setenv("NO_PROXY", "broker.internal")
    assert not proxied("http://broker.internal:8080")
    with Broker("http://broker.internal:8080") as broker:
        assert isinstance(broker._driver.sender, SyncWire)


# -- async -----------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_requests_reuse_connections_and_replace_closed_ones() -> None:
    with scripted(lambda n, line: ok()) as server:
        async with AsyncBroker(server.url, retry=NO_RETRY) as broker:
            wire = broker._driver.sender
            assert isinstance(wire, AsyncWire)
            for _ in range(3):
                await broker.health()
            server.hang_up()
            await anyio.sleep(0.05)
            await broker.health()
            assert wire.connections_opened == 2
    assert server.connections == 2
    assert len(server.requests) == 4


@pytest.mark.anyio
async def test_async_failures_say_whether_the_request_left() -> None:
    async with AsyncBroker(f"http://127.0.0.1:{_free_port()}", retry=NO_RETRY) as broker:
        with pytest.raises(BrokerUnavailable) as info:
            await broker.health()
    assert info.value.sent is False
    with scripted(lambda n, line: None) as server:
        async with AsyncBroker(server.url, retry=NO_RETRY) as broker:
            with pytest.raises(BrokerUnavailable) as info:
                await broker.health()
    assert info.value.sent is True
    with scripted(lambda n, line: ok(), delay=0.5) as server:
        async with AsyncBroker(server.url, timeout=0.1, retry=NO_RETRY) as broker:
            with pytest.raises(BrokerUnavailable) as info:
                await broker.health()
    assert info.value.sent is True
    assert "ReadTimeout" in str(info.value)


@pytest.mark.anyio
async def test_an_async_broker_reports_a_pool_timeout_as_not_sent() -> None:
    failures: list[BrokerUnavailable] = []
    with scripted(lambda n, line: ok(), delay=0.5) as server:
        options = {"max_connections": 1, "timeout": 0.1, "retry": NO_RETRY}
        async with AsyncBroker(server.url, **options) as broker:  # type: ignore[arg-type]

            async def one() -> None:
                try:
                    await broker.health()
                except BrokerUnavailable as exc:
                    failures.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(one)
                tg.start_soon(one)
    kinds = sorted(("PoolTimeout" in str(f), f.sent) for f in failures)
    # One waited for the only connection and gave up without sending; the other timed out reading its answer.
    assert kinds == [(False, True), (True, False)]


@pytest.mark.anyio
async def test_a_cancelled_request_never_puts_its_connection_back() -> None:
    with scripted(lambda n, line: ok(), delay=0.3) as server:
        async with AsyncBroker(server.url, timeout=5.0) as broker:
            wire = broker._driver.sender
            assert isinstance(wire, AsyncWire)
            with anyio.move_on_after(0.05):
                await broker.health()
            assert wire.open_connections == 0
            server.delay = 0.0
            await broker.health()  # a fresh connection: the cancelled one's late answer is never read as this one's
            assert wire.connections_opened == 2


@pytest.mark.anyio
async def test_the_async_httpx_path_still_serves_a_callers_transport() -> None:
    with scripted(lambda n, line: ok()) as server:
        import httpx

        async with AsyncBroker(server.url, transport=httpx.AsyncHTTPTransport()) as broker:
            assert isinstance(broker._driver.sender, AsyncHttpxSender)
            assert (await broker.health()).status == "ok"


@pytest.mark.anyio
async def test_waiters_get_a_connection_in_turn_and_a_cancelled_waiter_gives_its_turn_away() -> None:
    with scripted(lambda n, line: ok(), delay=0.05) as server:
        async with AsyncBroker(server.url, max_connections=1, timeout=5.0) as broker:
            wire = broker._driver.sender
            assert isinstance(wire, AsyncWire)
            done: list[int] = []

            async def one(n: int) -> None:
                await broker.health()
                done.append(n)

            async with anyio.create_task_group() as group:
                for n in range(4):
                    group.start_soon(one, n)
                    await anyio.sleep(0.005)  # queued in this order
                with anyio.move_on_after(0.02):  # a fifth gives up while it waits for its turn
                    await broker.health()
            assert sorted(done) == [0, 1, 2, 3]
            assert wire._busy == 0
            assert not wire._waiters
            await broker.health()
    assert server.connections == 1  # one connection, handed from request to request


@pytest.mark.anyio
async def test_closing_an_async_wire_closes_its_sockets_before_it_returns() -> None:
    """A loop that ends right after ``aclose`` must not leave a socket for the garbage collector to find open."""
    with scripted(lambda n, line: ok(), delay=0.05) as server:
        broker = AsyncBroker(server.url, retry=NO_RETRY)
        wire = broker._driver.sender
        assert isinstance(wire, AsyncWire)
        async with anyio.create_task_group() as tg:  # three at once: three connections
            for _ in range(3):
                tg.start_soon(broker.health)
        connections = list(wire._all)
        assert len(connections) == 3
        await broker.aclose()
        assert wire.open_connections == 0
        for connection in connections:
            assert connection.transport is not None
            assert connection.transport.get_extra_info("socket").fileno() == -1  # closed now, not at collection


@pytest.mark.anyio
async def test_a_connection_dropped_by_a_cancelled_request_is_closed_by_aclose_too() -> None:
    with scripted(lambda n, line: ok(), delay=0.3) as server:
        broker = AsyncBroker(server.url, retry=NO_RETRY, timeout=5.0)
        wire = broker._driver.sender
        assert isinstance(wire, AsyncWire)
        with anyio.move_on_after(0.05):
            await broker.health()
        assert wire.open_connections == 0
        (dropped,) = wire._closing  # aborted, but its socket closes only on the loop's next turn
        await broker.aclose()
        assert dropped.transport is not None
        assert dropped.transport.get_extra_info("socket").fileno() == -1
        assert not wire._closing
