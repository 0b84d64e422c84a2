"""MCP adapter (``pip install 'agentwrit-tools[mcp]'``): an MCP server's tools behind the guard, each call with
its own credential presented as the bearer of that ``tools/call`` request (streamable HTTP).

* :func:`connect` — open an initialised session to one server, with per-call bearers and bounded waits.
* :func:`mcp_tools` — the server's tools as guarded tools, by a scope mapping (unmapped tools are refused);
  every credential is bound to the server's resource URL (``aud``).
* :class:`CallBearer` — the HTTP ``auth`` that puts the running call's credential on its own request only (for
  sessions you open yourself).

::

    async with connect("https://records.example/mcp") as server:
        tools = await mcp_tools(server, scopes={"get_record": "read:records:{patient_id}"})
        async with Task(abroker, orch_id=..., task_id=..., ceiling=["read:records:P-1042"], tools=tools) as task:
            result = await task.acall("get_record", {"patient_id": "P-1042"})

The server side is :func:`agentwrit_tools.resource.mcp.protect`.
"""

from __future__ import annotations

from ._bearer import CallBearer
from ._connect import DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, MCPConnection, MCPServerError, connect
from ._tools import mcp_tools

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "CallBearer",
    "MCPConnection",
    "MCPServerError",
    "connect",
    "mcp_tools",
]
