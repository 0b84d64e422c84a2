"""``EmbeddedBroker``: the real broker on a loopback port inside the current process.

Tests, demos and notebooks need a broker with no Docker and no network. This runs the very same ASGI app as
``agentwrit-tools broker serve`` under a real uvicorn server in a background thread, on an ephemeral port, so
clients exercise the real wire. The listening socket is bound before the thread starts (a port clash raises
here, in the caller), and :meth:`start` returns only once the server accepts connections.

The broker's core (store, keys) is opened on the server thread's own event loop, where it is used: a SQLite
connection stays in that thread, a PostgreSQL pool belongs to that loop. Calls into the broker from other threads
(:meth:`EmbeddedBroker.create_app`, :meth:`EmbeddedBroker.call`) are scheduled onto it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
import socket
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from ..errors import ConfigurationError
from ._core import BrokerCore
from ._http import create_app
from ._problems import Problem
from ._serve import bind_socket, server_config, url_for
from ._settings import BrokerSettings
from ._svc_admin import AppCredentials, create_app_record, parse_new_app

__all__ = ["EmbeddedBroker"]

logger = logging.getLogger("agentwrit_tools.broker")

_START_TIMEOUT = 15.0


class EmbeddedBroker:
    """A broker running in this process on a loopback port.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        db_path: the SQLite file; ``None`` uses a temporary file deleted on :meth:`stop` (unless ``settings``
            names a PostgreSQL ``database_url``). Reusing a path in a new instance continues with all prior state
            (keys, apps, revocations, audit chain).
        admin_secret: the operator secret; generated when not given (read it back from :attr:`admin_secret`).
        extensions: see :class:`BrokerSettings` (default on); when given, overrides ``settings``.
        rate_limits: see :class:`BrokerSettings` (default on); when given, overrides ``settings``.
        host: the loopback address to bind.
        port: the port; 0 picks a free one.
        settings: full settings; the other arguments, when given, override its fields (``host`` and ``port``
            always do, since this broker binds them itself).
    """

    def __init__(
        self,
        *,
        db_path: str | Path | None = None,
        admin_secret: str | None = None,
        extensions: bool | None = None,
        rate_limits: bool | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: BrokerSettings | None = None,
    ) -> None:
        self._temp_dir: tempfile.TemporaryDirectory[str] | None = None
        if settings is None:
            settings = BrokerSettings()
        overrides: dict[str, Any] = {"host": host, "port": port}
        if extensions is not None:
            overrides["extensions"] = extensions
        if rate_limits is not None:
            overrides["rate_limits"] = rate_limits
        if db_path is not None:
            overrides["db_path"] = Path(db_path)
        secret = admin_secret or settings.admin_secret or secrets.token_urlsafe(24)
        overrides["admin_secret"] = secret
        self.settings = _replace(settings, **overrides)
        self.admin_secret: str = secret
        self.host = host
        self.url = ""
        self._core: BrokerCore | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._app: Any = None
        self._opened: Future[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> EmbeddedBroker:
        """Open the database, bind the port and serve; returns once connections are accepted.

        Raises:
            OSError: the port cannot be bound.
            ConfigurationError: unusable settings (key file, secret), a database that cannot be opened or reached.
            RuntimeError: the server did not come up.
        """
        if self._thread is not None:
            raise RuntimeError("this EmbeddedBroker is already running")
        if self.settings.db_path is None and self.settings.database_url is None:
            self._temp_dir = tempfile.TemporaryDirectory(prefix="agentwrit-broker-")
            self.settings = _replace(self.settings, db_path=Path(self._temp_dir.name) / "broker.db")
        try:
            self._socket = bind_socket(self.host, self.settings.port)
            port = self._socket.getsockname()[1]
            self.url = url_for(self.host, port)
            self._app = create_app(self.settings)
            config = server_config(
                self._app, self.settings, log_level="warning", loop="asyncio", timeout_graceful_shutdown=2
            )
            self._server = uvicorn.Server(config)
            self._opened = Future()
            self._thread = threading.Thread(target=self._run, name=f"agentwrit-broker-{port}", daemon=True)
            self._thread.start()
            self._wait_started()
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException:  # pragma: no cover - reported by _wait_started
            logger.error("embedded broker server stopped with an error")
            logger.debug("embedded broker error detail", exc_info=True)

    async def _serve(self) -> None:
        """The server thread's loop: open the core here (a PostgreSQL pool belongs to its loop), serve, close."""
        server, sock, opened = self._server, self._socket, self._opened
        if server is None or sock is None or opened is None:  # pragma: no cover - start() sets them first
            return
        try:
            core = await BrokerCore.open(self.settings)
        except BaseException as exc:
            opened.set_exception(exc)
            return
        self._core = core
        self._app.state.core = core
        self._loop = asyncio.get_running_loop()
        opened.set_result(None)
        try:
            await server.serve(sockets=[sock])
        finally:
            # A connection still half way through a request after the graceful timeout (a client that stalled
            # mid-body) is closed here, not left for the garbage collector.
            for connection in list(server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.close()
            await asyncio.sleep(0)  # let the transports finish closing on this loop
            await core.close()

    def _wait_started(self) -> None:
        server, thread, opened = self._server, self._thread, self._opened
        if server is None or thread is None or opened is None:  # pragma: no cover - start() sets them first
            raise RuntimeError("the embedded broker is not starting")
        opened.result(_START_TIMEOUT)  # the core's own error (ConfigurationError…) is raised here, in the caller
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if server.started:
                return
            if not thread.is_alive():
                raise RuntimeError("the embedded broker failed to start")
            threading.Event().wait(0.005)
        raise RuntimeError("the embedded broker did not start in time")

    def stop(self) -> None:
        """Stop serving, close the database and remove a temporary database. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._server = None
        self._loop = None
        self._core = None
        self._opened = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._temp_dir is not None:
            self._temp_dir.cleanup()
            self._temp_dir = None
            self.settings = _replace(self.settings, db_path=None)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def core(self) -> BrokerCore:
        """The live broker core (for in-process inspection; use it only through :meth:`call`)."""
        if self._core is None:
            raise RuntimeError("the embedded broker is not running")
        return self._core

    # -- in-process operations ------------------------------------------------------------------------------

    def call(self, fn: Any, *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(core, *args)`` on the server's event loop (where the store lives); a coroutine it returns is
        awaited there."""
        if self._loop is None or self._core is None:
            raise RuntimeError("the embedded broker is not running")
        core = self._core

        async def run() -> Any:
            result = fn(core, *args)
            return await result if inspect.isawaitable(result) else result

        future: Future[Any] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(timeout)

    def create_app(self, name: str, scopes: list[str], token_ttl: int | None = None) -> AppCredentials:
        """Register an app directly (no admin login, so no admin rate limit); validated like the HTTP route.

        Raises:
            ConfigurationError: the name, scopes or TTL are invalid (the message says which).
        """
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if token_ttl is not None:
            body["token_ttl"] = token_ttl

        async def create(core: BrokerCore) -> AppCredentials:
            parsed_name, parsed_scopes, ttl = parse_new_app(core, body)
            return await create_app_record(core, parsed_name, parsed_scopes, ttl)

        try:
            result: AppCredentials = self.call(create)
        except Problem as problem:
            raise ConfigurationError(problem.detail) from None
        return result

    def __repr__(self) -> str:
        return f"EmbeddedBroker(url={self.url!r}, running={self.running})"


def _replace(settings: BrokerSettings, **changes: Any) -> BrokerSettings:
    from dataclasses import replace

    return replace(settings, **changes)
