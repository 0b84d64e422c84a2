"""Shared by the MCP tests: a real ``MCPServer`` behind ``protect``, served by uvicorn on loopback, and what it saw.

The server's tools record what reached them — the verified claims, and whether any ``Authorization`` header did
(it must not: the server never passes a caller's token on). A recording layer in front of everything keeps the
``Authorization`` header of every HTTP request the server received, so a test can take a real call's token and
replay it.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "resource"))

from resource_support import closed_port_url, loopback_socket, serve_asgi

from agentwrit_tools.resource import AccessRecord
from agentwrit_tools.resource.mcp import _read_body, _replay, claims_of

__all__ = [
    "SCOPES",
    "Heard",
    "ServedMCP",
    "closed_port_url",
    "loopback_socket",
    "records_server",
    "serve_asgi",
]

SCOPES = {
    "get_record": "read:records:{patient_id}",
    "get_labs": "read:labs:{patient_id}",
    "slow": "read:records:{patient_id}",
}
"""The server's mapping; ``delete_all`` is deliberately left out."""


@dataclass(frozen=True)
class Heard:
    """One HTTP request as it reached the server: its method, the JSON-RPC method, and its bearer (or None)."""

    method: str
    rpc: str | None
    authorization: str | None


@dataclass
class ServedMCP:
    """The protected server, running."""

    url: str
    access: list[AccessRecord] = field(default_factory=list)
    tool_saw: list[dict[str, Any]] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls_of(self, tool: str) -> list[dict[str, Any]]:
        return [seen for seen in self.tool_saw if seen["tool"] == tool]

    def bearers(self) -> list[str]:
        return [h.authorization.split(" ", 1)[1] for h in self.heard if h.rpc == "tools/call" and h.authorization]


def records_server(served: ServedMCP) -> MCPServer:
    server = MCPServer("records", log_level="WARNING")

    def saw(tool: str, ctx: Context, **values: Any) -> None:
        request = ctx.request_context.request
        headers = request.headers if request is not None else {}
        claims = claims_of(ctx)
        with served.lock:
            served.tool_saw.append(
                {"tool": tool, "claims": claims, "authorization": headers.get("authorization"), **values}
            )

    @server.tool()
    def get_record(patient_id: str, ctx: Context) -> str:
        """Read one patient's record."""
        saw("get_record", ctx, patient_id=patient_id)
        return f"record of {patient_id}: Ada Lovelace"

    @server.tool()
    def get_labs(patient_id: str, ctx: Context) -> str:
        """Read one patient's labs."""
        saw("get_labs", ctx, patient_id=patient_id)
        return f"labs of {patient_id}: normal"

    @server.tool()
    async def slow(patient_id: str, ctx: Context) -> str:
        """Take far too long."""
        saw("slow", ctx, patient_id=patient_id)
        await anyio.sleep(10)
        return "late"

    @server.tool()
    def delete_all(confirm: bool) -> str:
        """Delete every record (never mapped to a scope: it must never run)."""
        with served.lock:
            served.tool_saw.append({"tool": "delete_all"})
        return "deleted"

    return server


class Recording:
    """Pure ASGI: note each request's method, JSON-RPC method and Authorization header, then pass it on."""

    def __init__(self, app: Any, served: ServedMCP) -> None:
        self.app = app
        self.served = served

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        authorization = headers.get(b"authorization")
        body = await _read_body(receive) or b""
        rpc = _rpc_method(body)
        with self.served.lock:
            self.served.heard.append(Heard(scope["method"], rpc, authorization.decode() if authorization else None))
        await self.app(scope, _replay(body, receive), send)


def _rpc_method(body: bytes) -> str | None:
    import json

    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message.get("method") if isinstance(message, dict) else None
