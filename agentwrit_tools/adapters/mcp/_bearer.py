"""Each ``tools/call`` request carries its own call's credential, and no other request carries any.

One MCP session is shared by every call of a task, but each call has its own credential. The session's HTTP
client gets :class:`CallBearer` as its ``auth``: while a guarded tool body awaits ``session.call_tool``, a context
variable names the credential and the tool, and the hook adds ``Authorization: Bearer …`` to exactly the one
request that is that call — a POST to the server's endpoint whose JSON-RPC body is ``tools/call`` of that tool.
The MCP SDK (2.x) sends each message in the context of the code that sent it, so concurrent calls never see each
other's credentials; ``initialize``, ``tools/list``, notifications and the server-event stream carry none.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx2

__all__ = ["CallBearer", "presenting"]


@dataclass(frozen=True, slots=True)
class _Presented:
    tool: str
    credential: Any = field(repr=False)


_PRESENTED: ContextVar[_Presented | None] = ContextVar("agentwrit_tools_mcp_presented", default=None)


@contextmanager
def presenting(tool: str, credential: Any) -> Iterator[None]:
    """Within this block, the ``tools/call`` of ``tool`` sent from this context carries ``credential``."""
    token = _PRESENTED.set(_Presented(tool, credential))
    try:
        yield
    finally:
        _PRESENTED.reset(token)


def _calls(request: httpx2.Request, tool: str) -> bool:
    """Whether the request's body is the JSON-RPC ``tools/call`` of ``tool`` (and nothing else)."""
    try:
        message = json.loads(request.content or b"null")
    except (ValueError, RecursionError):
        return False
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return False
    params = message.get("params")
    return isinstance(params, dict) and params.get("name") == tool


class CallBearer(httpx2.Auth):
    """The ``auth`` of an MCP session's HTTP client: the running call's credential on its own request only.

    Args:
        url: the MCP endpoint; a request to any other URL never carries a credential.
    """

    requires_request_body = True

    def __init__(self, url: str) -> None:
        self._url = httpx2.URL(url)

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        presented = _PRESENTED.get()
        mine = presented is not None and request.method == "POST" and request.url == self._url
        if presented is not None and mine and _calls(request, presented.tool):
            request.headers.update(presented.credential.headers_for(request.method, str(self._url)))
        yield request
