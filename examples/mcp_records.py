"""An MCP server whose tools need a per-call credential, and a client that gives each call its own.

Both sides run here, offline: the embedded broker, a protected ``MCPServer`` under uvicorn on a loopback port
(streamable HTTP), and an MCP client session whose ``tools/call`` requests each carry their own credential —
minted for exactly that call's scope, bound to this server's URL, released when the call returns.

    python examples/mcp_records.py
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn
from mcp.server.mcpserver import MCPServer

from agentwrit_tools import AsyncBroker, Task, Verifier
from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.resource.mcp import protect

SCOPES = {"get_record": "read:records:{patient_id}"}

server = MCPServer("records", log_level="WARNING")


@server.tool()
def get_record(patient_id: str) -> str:
    """Read one patient's record."""
    return f"{patient_id}: Ada Lovelace, born 1815"


@server.tool()
def delete_all_records(confirm: bool) -> str:
    """Mapped to no scope: nobody can call it through the protection."""
    return "deleted"


@contextlib.contextmanager
def served(app: object, sock: socket.socket) -> Iterator[None]:
    """uvicorn on ``sock`` in a thread, for the length of the block."""
    running = uvicorn.Server(uvicorn.Config(app, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.01)
    try:
        yield
    finally:
        running.should_exit = True
        thread.join(timeout=10)


async def main() -> None:
    with EmbeddedBroker() as broker:
        app = broker.create_app("clinic", ["read:records:*"])
        # The MCP server verifies locally; reading the broker's revocation feed takes an app identity of its own.
        reader = broker.create_app("records-server", ["read:revocations:feed"])
        with Verifier(broker.url, client_id=reader.client_id, client_secret=reader.client_secret) as verifier:
            await serve_and_call(broker.url, app.client_id, app.client_secret, verifier)


async def serve_and_call(broker_url: str, client_id: str, client_secret: str | None, verifier: Verifier) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"  # the resource URL tokens are bound to
    protected = protect(server, verifier=verifier, resource=url, scopes=SCOPES, access_log=None)
    with served(protected, sock):
        async with (
            AsyncBroker(broker_url, client_id, client_secret) as abroker,
            connect(url, connect_timeout=5, call_timeout=10) as session,
        ):
            tools = await mcp_tools(session, scopes=SCOPES)
            ceiling = "read:records:P-1042"
            async with Task(abroker, orch_id="clinic", task_id="visit-77", ceiling=ceiling, tools=tools) as task:
                for name, arguments in (
                    ("get_record", {"patient_id": "P-1042"}),
                    ("get_record", {"patient_id": "P-2000"}),
                    ("delete_all_records", {"confirm": True}),
                ):
                    result = await task.acall(name, arguments)
                    print(f"{name}({arguments}) -> {result.content}")
            print(task.exposure().table())
        call = {"name": "get_record", "arguments": {"patient_id": "P-1042"}}
        async with httpx.AsyncClient() as http:
            bare = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
        print(f"without a credential: {bare.status_code}, {bare.headers['www-authenticate']}")


if __name__ == "__main__":
    asyncio.run(main())
