"""Running the broker as a server in the foreground (``agentwrit-tools broker serve``).

Everything that can fail because of the user's setup — the database path, the key file, the secret, the port —
is tried *before* uvicorn starts, so the CLI can answer with one clear line instead of a server log full of
tracebacks.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from ._core import BrokerCore
from ._http import create_app
from ._keyring import ENV_KEYRING_SECRET
from ._protocols import http_protocol
from ._settings import BrokerSettings

__all__ = ["bind_socket", "is_loopback", "serve", "server_config", "startup_warnings", "url_for"]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound before any server machinery starts (port clashes surface here).

    Raises:
        OSError: the address cannot be bound (in use, not local, not permitted).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and
    # without it Nagle + delayed ACK add ~40 ms to every keep-alive response (headers and body are two writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def server_config(app: Any, settings: BrokerSettings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration every way of running the broker uses (``broker serve``, ``EmbeddedBroker``).

    * ``X-Forwarded-For`` is believed only from the proxies named in ``settings.forwarded_allow_ips`` (none by
      default). uvicorn on its own trusts it from 127.0.0.1, which let any local process pick the address that
      rate limits and the audit see.
    * No ``Server`` header: what serves the broker is nobody's business.
    * httptools and uvloop when installed (:mod:`._protocols`).
    """
    proxies = list(settings.forwarded_allow_ips)
    return uvicorn.Config(
        app,
        access_log=False,
        lifespan="on",
        ws="none",
        server_header=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or "",
        **{"http": http_protocol(), **options},
    )


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost``; anything else (a name, ``0.0.0.0``) may be reachable."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def startup_warnings(settings: BrokerSettings) -> list[str]:
    """What an operator should hear about before the broker serves (one line each)."""
    warnings: list[str] = []
    if not is_loopback(settings.host) and settings.keyring_secret is None:
        warnings.append(
            f"serving on {settings.host}, a non-loopback address, without {ENV_KEYRING_SECRET}: the signing key "
            "is stored unencrypted; set it to keep the key sealed at rest"
        )
    return warnings


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(settings: BrokerSettings, *, on_ready: Callable[[str], None] | None = None, log_level: str = "info") -> None:
    """Open the broker and serve until interrupted (Ctrl-C / SIGTERM stop it gracefully).

    The store is opened (connected, migrated), the keys loaded and the port bound before uvicorn starts, all on
    the loop that then serves (a PostgreSQL pool belongs to its loop).

    Args:
        settings: the configuration (``host``/``port`` say where to listen).
        on_ready: called with the base URL once the database is open and the port is bound.
        log_level: uvicorn's log level.

    Raises:
        ConfigurationError: unusable settings, a database that cannot be opened or reached.
        OSError: the port cannot be bound.
    """
    app = create_app(settings)
    config = server_config(app, settings, log_level=log_level)

    async def main() -> None:
        core = await BrokerCore.open(settings)
        try:
            sock = bind_socket(settings.host, settings.port)
        except BaseException:
            await core.close()
            raise
        try:
            app.state.core = core
            port = sock.getsockname()[1]
            if on_ready is not None:
                on_ready(url_for(settings.host, port))
            server = uvicorn.Server(config)
            # Everything alive now (the framework, the app, the imported modules) lives as long as the process.
            # Left in the collector's oldest generation, each full collection walked it all: a 30-50 ms pause on
            # some request every few thousand. Frozen, a full collection only walks what requests allocated since.
            gc.collect()
            gc.freeze()
            await server.serve(sockets=[sock])
        finally:
            sock.close()
            await core.close()

    asyncio.run(main())
