"""Proof of possession over MCP: a protected server that demands key-bound tokens, and the client adapter that
presents each ``tools/call`` credential with a fresh proof for that request.

The server (``protect(..., possession="required")``) advertises it in its RFC 9728 metadata; a guarded call from a
task whose broker binds tokens runs; the same call from a task with bearer tokens is refused before the tool runs;
the token of a call that went through, replayed with its own proof, is refused too. The tool never sees a token or
a proof.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp_support import SCOPES, ServedMCP, loopback_socket, records_server, serve_asgi
from support import feed_reader

from agentwrit_tools import AsyncBroker, Task, Verifier
from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.resource.mcp import protect

_tasks = itertools.count()


class Capturing:
    """Pure ASGI in front of the protected server: keeps the Authorization and DPoP headers of each request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers") or ()}
            self.seen.append({k: v for k, v in headers.items() if k in ("authorization", "dpop")})
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def strict_server(broker: Any) -> Iterator[tuple[ServedMCP, Capturing]]:
    sock = loopback_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    served = ServedMCP(url)
    with Verifier(broker.url, revocation_bound=0.2, **feed_reader(broker)) as verifier:
        app = protect(
            records_server(served), verifier=verifier, resource=url, scopes=SCOPES, access_log=None,
            possession="required",
        )  # fmt: skip
        capturing = Capturing(app)
        with serve_asgi(capturing, sock=sock):
            yield served, capturing


async def _call(broker: Any, app: Any, url: str, *, pop: bool) -> Any:
    async with (
        AsyncBroker(broker.url, app.client_id, app.client_secret, proof_of_possession=pop) as aclient,
        connect(url) as conn,
    ):
        tools = await mcp_tools(conn, scopes=SCOPES)
        task_id = f"mcp-pop-{next(_tasks)}"
        async with Task(aclient, orch_id="o", task_id=task_id, ceiling="read:records:P-1", tools=tools) as task:
            return await task.acall("get_record", {"patient_id": "P-1"})


def test_the_metadata_says_tokens_must_be_key_bound(strict_server: tuple[ServedMCP, Capturing]) -> None:
    served, _ = strict_server
    base = served.url.removesuffix("/mcp")
    metadata = httpx.get(f"{base}/.well-known/oauth-protected-resource/mcp", timeout=10).json()
    assert metadata["dpop_bound_access_tokens_required"] is True
    assert metadata["dpop_signing_alg_values_supported"] == ["EdDSA"]


@pytest.mark.anyio
async def test_a_key_bound_call_runs_and_its_copy_is_refused(
    broker: Any, app: Any, strict_server: tuple[ServedMCP, Capturing]
) -> None:
    served, capturing = strict_server
    result = await _call(broker, app, served.url, pop=True)
    assert result.ok, result.message
    [seen] = served.calls_of("get_record")
    assert seen["claims"].jkt is not None
    assert seen["authorization"] is None  # the tool never sees the token
    [presented] = [h for h in capturing.seen if h.get("authorization", "").startswith("DPoP ")]
    assert "dpop" in presented
    # The call's token and proof, copied and replayed: refused (the proof was used; and the token is released).
    accept = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "get_record"}}
    call["params"]["arguments"] = {"patient_id": "P-1"}  # type: ignore[index]
    async with httpx.AsyncClient(timeout=10) as http:
        replayed = await http.post(served.url, headers={**presented, **accept}, json=call)
    assert replayed.status_code in (401, 403)
    assert len(served.calls_of("get_record")) == 1


@pytest.mark.anyio
async def test_a_bearer_call_is_refused_before_the_tool_runs(
    broker: Any, app: Any, strict_server: tuple[ServedMCP, Capturing]
) -> None:
    served, _ = strict_server
    before = len(served.calls_of("get_record"))
    result = await _call(broker, app, served.url, pop=False)
    assert not result.ok
    assert len(served.calls_of("get_record")) == before
