"""A fault-injecting TCP proxy for loopback HTTP/1.1: the real broker behind it, real sockets in front.

The proxy frames requests and responses (``Content-Length``; the broker never chunks) so it can decide per
*request* what goes wrong, and it can go wrong at the two moments that matter for a credential library:

* before the broker sees the request (``reset_before``, ``error_503``, ``stall``) — nothing happened there;
* after the broker answered (``reset_after``, ``error_500_after``, ``truncate``) — the work was done (a token was
  issued, or released) but the client never learns it.

Resets are real TCP RSTs (``SO_LINGER`` 0). Every response the client never received is kept in
:attr:`FaultProxy.swallowed`, so a test can tell "a token the broker issued that nobody ever held" from a leak.
The upstream address can be switched at any time (:meth:`FaultProxy.retarget`), which is how a broker restart on a
new port looks to the client: connections refused for a while, then a broker with the same state.

Decisions come from :class:`FaultPlan`: seeded per (path, n-th request to that path), so the same seed gives the
same faults for the same request sequence regardless of unrelated traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("reset_before", "error_503", "stall", "reset_after", "error_500_after", "truncate")
AFTER = frozenset({"reset_after", "error_500_after", "truncate"})


@dataclass
class FaultPlan:
    """Which request goes wrong, and how: seeded, per path.

    Attributes:
        seed: the run's seed.
        rate: probability that one request is faulted.
        weights: relative weight of each action among faulted requests.
        paths: only these paths are faulted (None: all).
        enabled: faults are injected only while True.
    """

    seed: int
    rate: float = 0.1
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "reset_before": 3,
            "error_503": 3,
            "stall": 0.5,
            "reset_after": 3,
            "error_500_after": 2,
            "truncate": 1,
        }
    )
    paths: frozenset[str] | None = None
    enabled: bool = True
    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, method: str, path: str) -> str:
        with self._lock:
            n = self._counts[path]
            self._counts[path] += 1
        if not self.enabled or (self.paths is not None and path not in self.paths):
            return "pass"
        roll = random.Random(f"{self.seed}:{method}:{path}:{n}")
        if roll.random() >= self.rate:
            return "pass"
        actions = list(self.weights)
        return roll.choices(actions, weights=[self.weights[a] for a in actions])[0]


@dataclass(frozen=True)
class Swallowed:
    """A response the broker sent that the client never received."""

    action: str
    method: str
    path: str
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _Closed(Exception):
    pass


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 message: (head including the blank line, body) framed by Content-Length."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise _Closed from exc
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding":
            raise _Closed("chunked messages are not supported by this proxy")
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _Closed from exc
    return head, body


def _problem(status: int, title: str, path: str) -> bytes:
    body = json.dumps(
        {
            "type": "urn:agentwrit:error:internal_error",
            "title": title,
            "status": status,
            "detail": "injected by the fault proxy",
            "instance": path,
            "error_code": "internal_error",
            "request_id": "fault-proxy",
        }
    ).encode()
    head = f"HTTP/1.1 {status} {title}\r\ncontent-type: application/problem+json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Listens on a loopback port and forwards to ``upstream`` (host, port), injecting faults per ``plan``.

    Use as a context manager; :attr:`url` is what clients connect to.
    """

    def __init__(self, upstream: tuple[str, int], plan: FaultPlan, *, stall: float = 1.5) -> None:
        self.upstream = upstream
        self.plan = plan
        self.stall = stall
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.upstream_refused = 0
        self.swallowed: list[Swallowed] = []
        self.on_swallow: Callable[[Swallowed], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for pending in asyncio.all_tasks(loop):
                pending.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
            loop.close()

    def retarget(self, upstream: tuple[str, int]) -> None:
        """Send new connections (and reconnects) to another address: a restarted broker."""
        self.upstream = upstream

    @contextlib.contextmanager
    def faults_off(self) -> Iterator[None]:
        before = self.plan.enabled
        self.plan.enabled = False
        try:
            yield
        finally:
            self.plan.enabled = before

    # -- one client connection ------------------------------------------------------------------------------

    def _swallow(self, action: str, method: str, path: str, response: bytes) -> None:
        status_line, _, rest = response.partition(b"\r\n")
        try:
            status = int(status_line.split(b" ")[1])
        except (IndexError, ValueError):
            status = 0
        body = rest.partition(b"\r\n\r\n")[2]
        item = Swallowed(action, method, path, status, body)
        with self._lock:
            self.swallowed.append(item)
        if self.on_swallow is not None:
            self.on_swallow(item)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        target: tuple[str, int] | None = None
        try:
            while True:
                try:
                    head, body = await _read_message(reader)
                except _Closed:
                    break
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, raw_path = request_line.split(" ")[0], request_line.split(" ")[1]
                path = raw_path.split("?", 1)[0]
                action = self.plan.decide(method, path)
                if action != "pass":
                    self.injected[action] += 1
                if action == "reset_before":
                    _reset(writer)
                    return
                if action == "error_503":
                    writer.write(_problem(503, "Service Unavailable", path))
                    await writer.drain()
                    continue
                if action == "stall":
                    await asyncio.sleep(self.stall)
                    _reset(writer)
                    return
                if up is None or target != self.upstream or up[0].at_eof():  # idle upstream closed: reconnect
                    if up is not None:
                        up[1].close()
                    target = self.upstream
                    try:
                        up = await asyncio.open_connection(*target)
                    except OSError:
                        self.upstream_refused += 1
                        up = None
                        _reset(writer)
                        return
                try:
                    up[1].write(head + body)
                    await up[1].drain()
                    resp_head, resp_body = await _read_message(up[0])
                except (_Closed, ConnectionError, OSError):
                    self.upstream_refused += 1
                    _reset(writer)
                    return
                self.forwarded += 1
                response = resp_head + resp_body
                if action in AFTER:
                    self._swallow(action, method, path, response)
                if action == "reset_after":
                    _reset(writer)
                    return
                if action == "error_500_after":
                    writer.write(_problem(500, "Internal Server Error", path))
                    await writer.drain()
                    continue
                if action == "truncate":
                    writer.write(response[: max(1, len(response) // 2)])
                    await writer.drain()
                    _reset(writer)
                    return
                writer.write(response)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if up is not None:
                up[1].close()
            if not writer.is_closing():
                writer.close()
