"""Opening an MCP session whose calls can carry per-call credentials, with bounded waits everywhere.

:func:`connect` opens a streamable-HTTP session to one MCP server with :class:`~._bearer.CallBearer` installed,
completes the handshake within ``connect_timeout`` and gives every later request ``call_timeout``: an
unreachable, silent or malformed server is a :class:`MCPServerError` naming the URL and what went wrong, never
a hang and never a traceback from inside the transport. A server that goes away during the session fails the
transport's task group, which cancels the work inside the block (a guarded call releases its credential on the
way out); the block then ends with an :class:`MCPServerError` saying the session broke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..._audience import resource_problem
from ...errors import AgentWritError, ConfigurationError
from ._bearer import CallBearer

__all__ = ["DEFAULT_CALL_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT", "MCPConnection", "MCPServerError", "connect"]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CALL_TIMEOUT = 30.0


class MCPServerError(AgentWritError):
    """An MCP server could not be reached, did not answer in time, or answered outside the protocol.

    The message names the URL and a fixed reason; it never quotes what the server sent.

    Attributes:
        url: the MCP endpoint.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


@dataclass(frozen=True)
class MCPConnection:
    """An initialised session with one MCP server.

    Attributes:
        session: the ``mcp`` client session (its HTTP client carries :class:`~._bearer.CallBearer`).
        url: the endpoint, also the resource URL its credentials are bound to.
        call_timeout: seconds a ``tools/call`` may take.
    """

    session: ClientSession = field(repr=False)
    url: str
    call_timeout: float


def _leaves(exc: BaseException) -> Iterable[BaseException]:
    """The exceptions inside (possibly nested) exception groups, or ``exc`` itself."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple) and inner:
        for item in inner:
            yield from _leaves(item)
    else:
        yield exc


def _phrase(leaf: BaseException) -> str | None:
    if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
        return "it did not answer in time"
    if isinstance(leaf, httpx2.ConnectError):
        return "the connection was refused or failed"
    if isinstance(leaf, httpx2.TransportError):
        return "the connection broke"
    if isinstance(leaf, MCPError):
        return "it did not answer as an MCP server"
    return None


def reason(exc: BaseException) -> str | None:
    """A fixed phrase when ``exc`` is a transport or protocol failure (every exception of a group is one),
    else None: anything else is not the server's doing and is left as it is."""
    phrases = [_phrase(leaf) for leaf in _leaves(exc)]
    if not phrases or any(phrase is None for phrase in phrases):
        return None
    return phrases[0]


def _check(url: object, connect_timeout: float, call_timeout: float) -> str:
    problem = resource_problem(url)
    if problem is not None:
        raise ConfigurationError(f"MCP server URL: {problem}")
    for name, value in (("connect_timeout", connect_timeout), ("call_timeout", call_timeout)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigurationError(f"{name} must be a positive number of seconds")
    return str(url)


@asynccontextmanager
async def connect(
    url: str,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    **session_options: Any,
) -> AsyncIterator[MCPConnection]:
    """Open and initialise a streamable-HTTP MCP session whose tool calls can each carry their own credential.

    Args:
        url: the server's MCP endpoint (``https://host/mcp``); also the resource its credentials are bound to.
        connect_timeout: seconds for the TCP connection and the whole handshake.
        call_timeout: seconds any later request may take (a ``tools/call`` included).
        session_options: passed to ``mcp.ClientSession`` (``client_info``, callbacks…).

    Raises:
        ConfigurationError: a malformed URL or timeout.
        MCPServerError: the server is unreachable, silent or not an MCP server.
    """
    endpoint = _check(url, connect_timeout, call_timeout)
    timeout = httpx2.Timeout(call_timeout, connect=connect_timeout)
    opened = False
    try:
        async with (
            httpx2.AsyncClient(auth=CallBearer(endpoint), timeout=timeout) as http,
            streamable_http_client(endpoint, http_client=http) as (read, write),
            ClientSession(read, write, read_timeout_seconds=call_timeout, **session_options) as session,
        ):
            with anyio.fail_after(connect_timeout):
                await session.initialize()
            opened = True
            yield MCPConnection(session, endpoint, call_timeout)
    except Exception as exc:
        why = reason(exc)
        if why is None:
            raise
        if opened:  # the transport failed under the session (the server went away): the session is over
            raise MCPServerError(f"the MCP session with {endpoint} broke: {why}", url=endpoint) from None
        raise MCPServerError(f"cannot open an MCP session with {endpoint}: {why}", url=endpoint) from None
