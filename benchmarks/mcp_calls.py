"""What a per-call credential adds to an MCP tool call, end to end over streamable HTTP on loopback.

*Guarded*: ``await task.acall("get_record", ...)`` through the MCP adapter — validate, render the scope, mint a
credential bound to the server (challenge + register at the CLI-started broker), present it as that
``tools/call``'s bearer, the protected server verifies it (local JWKS + revocation feed) and checks the scope
rendered from the call's arguments, the tool runs, the credential is released. *Bare*: the same ``tools/call``
on the same kind of server without the protection, through a plain ``mcp`` session. The two are interleaved
call by call; the overhead is their paired difference. Both servers run in this process under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.client import AsyncBroker, Verifier
from agentwrit_tools.guard import Task
from agentwrit_tools.resource.mcp import protect

from ._broker import LOOPBACK, BrokerProcess, free_port, setup_app
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, ainterleave, paired_difference

__all__ = ["BENCHMARK", "run"]

SCOPES = {"get_record": "read:bench:{patient_id}"}


def _server() -> MCPServer:
    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def get_record(patient_id: str) -> str:
        """Read one record."""
        return patient_id

    return server


@contextlib.contextmanager
def _served(app: Any, port: int) -> Iterator[str]:
    running = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the MCP server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{LOOPBACK}:{port}/mcp"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


async def _measure(ctx: Context, broker_url: str, app: Any, guarded_url: str, bare_url: str) -> dict[str, Latencies]:
    options = ctx.options
    latencies = {"guarded": Latencies(), "bare": Latencies()}
    async with (
        AsyncBroker(broker_url, app.client_id, app.client_secret) as abroker,
        connect(guarded_url) as guarded,
        connect(bare_url) as bare,
    ):
        tools = await mcp_tools(guarded, scopes=SCOPES)
        async with Task(abroker, orch_id="bench", task_id="mcp", ceiling="read:bench:*", tools=tools) as task:

            async def through_guard(n: int) -> None:
                result = await task.acall("get_record", {"patient_id": f"P-{n}"})
                if not result.ok:
                    raise RuntimeError(f"the guarded MCP call failed: {result.error_kind} {result.message}")

            async def unguarded(n: int) -> None:
                await bare.session.call_tool("get_record", {"patient_id": f"P-{n}"})

            operations = {"guarded": through_guard, "bare": unguarded}
            for rep in range(options.repeat + 1):  # the first repetition is a warm-up
                target = latencies if rep else {name: Latencies() for name in latencies}
                await ainterleave(operations, options.size(150 if rep else 20, 5), target)
                ctx.advance()
    return latencies


def run(ctx: Context) -> list[Figure]:
    ctx.phase("mcp: guarded vs bare tools/call", ctx.options.repeat + 1)
    guarded_port, bare_port = free_port(), free_port()
    with BrokerProcess() as process, Verifier(process.url) as verifier:
        app = setup_app(process, "bench-mcp")
        resource = f"http://{LOOPBACK}:{guarded_port}/mcp"
        protected = protect(_server(), verifier=verifier, resource=resource, scopes=SCOPES, access_log=None)
        with (
            _served(protected, guarded_port) as guarded_url,
            _served(_server().streamable_http_app(), bare_port) as bare_url,
        ):
            latencies = asyncio.run(_measure(ctx, process.url, app, guarded_url, bare_url))
    overhead = paired_difference(latencies["guarded"], latencies["bare"])
    ctx.keep("guarded MCP tools/call", latencies["guarded"].samples)
    ctx.keep("bare MCP tools/call", latencies["bare"].samples)
    return [
        *latencies["guarded"].figures("mcp_guarded_call_ms", "guarded MCP tools/call"),
        *latencies["bare"].figures("mcp_bare_call_ms", "bare MCP tools/call"),
        overhead.figure("mcp_guard_overhead_ms_p50", "per-call credential overhead on an MCP call p50"),
    ]


BENCHMARK = Benchmark(
    name="mcp",
    title="MCP: a tools/call with its own audience-bound credential vs the bare call",
    note=(
        "Interleaved call by call over streamable HTTP on loopback. Guarded: mint (bound to the server) + present + "
        "server-side local verification and scope check + release, through the MCP adapter; bare: the same "
        "tools/call on an unprotected server. One CLI-started broker; both MCP servers in process under uvicorn."
    ),
    run=run,
)
