"""Fixtures for the MCP suite: the session's real embedded broker, an app per test, and one protected MCP server
(the official ``mcp`` SDK's ``MCPServer`` behind :func:`agentwrit_tools.resource.mcp.protect`) under uvicorn on
an ephemeral loopback port, verifying tokens locally against the broker (JWKS + revocation feed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp_support import SCOPES, Recording, ServedMCP, loopback_socket, records_server, serve_asgi
from support import feed_reader

from agentwrit_tools import Verifier
from agentwrit_tools.resource.mcp import protect

APP_SCOPES = ["read:records:*", "read:labs:*"]


@pytest.fixture(scope="session")
def app_scopes() -> list[str]:
    return APP_SCOPES


@pytest.fixture(scope="session")
def mcp_server(broker: Any) -> Iterator[ServedMCP]:
    sock = loopback_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    served = ServedMCP(url)
    with Verifier(broker.url, revocation_bound=0.2, **feed_reader(broker)) as verifier:
        app = protect(
            records_server(served),
            verifier=verifier,
            resource=url,
            scopes=SCOPES,
            authorization_servers=[broker.url],
            access_log=[served.access.append],
        )
        with serve_asgi(Recording(app, served), sock=sock):
            yield served


@pytest.fixture
def served(mcp_server: ServedMCP) -> ServedMCP:
    """The server with its records emptied for this test."""
    with mcp_server.lock:
        mcp_server.access.clear()
        mcp_server.tool_saw.clear()
        mcp_server.heard.clear()
    return mcp_server
