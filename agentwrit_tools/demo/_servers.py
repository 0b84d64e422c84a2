"""Serving a demo's web apps (its protected API, its UI) in a background thread on a loopback socket.

The socket is bound first, in the caller's thread, so "port in use" is an error the CLI can print as one line;
the call returns only once the server accepts connections. ASGI apps (FastAPI) run under uvicorn, WSGI apps
(Flask) under werkzeug's threaded server — each request, Server-Sent Events streams included, on its own thread.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal

from ..errors import ConfigurationError

__all__ = ["DemoError", "LoopbackServer"]

_START_TIMEOUT = 15.0


class DemoError(ConfigurationError):
    """A demo cannot start or run as asked (port in use, broker not answering…); the message is one line."""


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or "cannot bind")
        raise DemoError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


class LoopbackServer:
    """One web app served on ``host:port`` (0: any free port) until :meth:`stop`.

    Args:
        app: an ASGI app (``kind="asgi"``) or a WSGI app (``kind="wsgi"``).
        name: for the thread's name and error messages.
    """

    def __init__(
        self, app: Any, *, kind: Literal["asgi", "wsgi"], name: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = app
        self.kind = kind
        self.name = name
        self.host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopper: Any = None
        self._ready = threading.Event()
        self.url = ""

    def start(self) -> LoopbackServer:
        """Bind, serve in a thread, return once it answers. Raises :class:`DemoError` on a port clash."""
        self._socket = _bind(self.host, self._port)
        port = self._socket.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        target = self._serve_asgi if self.kind == "asgi" else self._serve_wsgi
        self._thread = threading.Thread(target=target, name=f"{self.name}-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._ready.wait(0.01):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise DemoError(f"the {self.name} did not start")
        return self

    def _serve_asgi(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="auto", ws="none", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        self._stopper = server

        watcher = threading.Thread(target=self._watch_started, args=(server,), daemon=True)
        watcher.start()
        assert self._socket is not None  # noqa: S101 - start() bound it
        server.run(sockets=[self._socket])

    def _watch_started(self, server: Any) -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.005)
        self._ready.set()

    def _serve_wsgi(self) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            """No line per request on stderr (the ASGI side runs without an access log too)."""

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return None

        assert self._socket is not None  # noqa: S101 - start() bound it
        server = make_server(
            self.host,
            self._socket.getsockname()[1],
            self.app,
            threaded=True,
            request_handler=QuietHandler,
            fd=self._socket.fileno(),
        )
        server.daemon_threads = True  # type: ignore[attr-defined]  # threaded: a ThreadingMixIn server
        self._stopper = server
        self._ready.set()
        server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving and free the port. Safe to call twice."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            if self.kind == "asgi":
                stopper.should_exit = True
            else:
                stopper.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
