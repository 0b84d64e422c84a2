"""A bad MCP server is a clear error within the timeouts, never a hang: nothing listening, something that is not an
MCP server, a server that accepts the connection and says nothing, and a server that dies during the session."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from mcp_support import SCOPES, ServedMCP, closed_port_url, loopback_socket, records_server, serve_asgi

from agentwrit_tools import AsyncBroker, ConfigurationError, Task, Verifier
from agentwrit_tools.adapters.mcp import MCPServerError, connect, mcp_tools
from agentwrit_tools.resource.mcp import protect

pytestmark = pytest.mark.anyio


class _NotMCP(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        self.send_response(self.status)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>a web page</html>")

    def log_message(self, *args: Any) -> None:
        return


class _NotFound(_NotMCP):
    status = 404


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def html_url() -> Iterator[str]:
    yield from _serve(_NotMCP)


@pytest.fixture
def not_found_url() -> Iterator[str]:
    yield from _serve(_NotFound)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """Accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


async def _opening(url: str, connect_timeout: float = 1.0) -> tuple[MCPServerError, float]:
    started = time.monotonic()
    with pytest.raises(MCPServerError) as failed:
        async with connect(url, connect_timeout=connect_timeout, call_timeout=2.0):
            pass
    return failed.value, time.monotonic() - started


async def test_nothing_listening(request: pytest.FixtureRequest) -> None:
    url = closed_port_url() + "/mcp"
    error, elapsed = await _opening(url)
    assert str(error) == f"cannot open an MCP session with {url}: the connection was refused or failed"
    assert error.url == url
    assert elapsed < 1.0


@pytest.mark.parametrize("fixture", ["html_url", "not_found_url"])
async def test_something_that_is_not_an_mcp_server(request: pytest.FixtureRequest, fixture: str) -> None:
    url = request.getfixturevalue(fixture)
    error, elapsed = await _opening(url)
    assert str(error) == f"cannot open an MCP session with {url}: it did not answer as an MCP server"
    assert elapsed < 1.0


async def test_a_server_that_never_answers_times_out(silent_url: str) -> None:
    error, elapsed = await _opening(silent_url, connect_timeout=0.5)
    assert str(error).endswith("it did not answer in time")
    assert 0.4 < elapsed < 3.0


async def test_malformed_settings_are_configuration_errors() -> None:
    for url, options in (("not a url", {}), ("http://127.0.0.1:1/mcp", {"connect_timeout": 0})):
        with pytest.raises(ConfigurationError):
            async with connect(url, **options):
                pass


def _refusing(port: int, within: float = 10.0) -> None:
    """Wait until nothing accepts connections on ``port`` any more."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("the server kept listening")


async def test_a_server_that_goes_away_mid_session_ends_the_session_with_a_clear_error(
    broker: Any, aclient: AsyncBroker, task_id: str
) -> None:
    sock = loopback_socket()
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    served = ServedMCP(url)
    with Verifier(broker.url) as verifier:
        app = protect(records_server(served), verifier=verifier, resource=url, scopes=SCOPES, access_log=None)
        server = serve_asgi(app, sock=sock)
        server.__enter__()
        stopping = threading.Thread(target=server.__exit__, args=(None, None, None))
        task = Task(aclient, orch_id="o", task_id=task_id, ceiling="read:records:P-1")
        started = elapsed = 0.0
        with pytest.raises(MCPServerError) as broke:  # noqa: PT012 - the session, the stop and the call
            async with connect(url, connect_timeout=2.0, call_timeout=2.0) as conn:
                tools = await mcp_tools(conn, scopes={"get_record": SCOPES["get_record"]})
                stopping.start()  # uvicorn stops listening at once, then waits for the open streams
                await anyio.to_thread.run_sync(_refusing, port)
                async with task:
                    started = anyio.current_time()
                    try:
                        await task.acall(tools[0], {"patient_id": "P-1"})
                    finally:
                        elapsed = anyio.current_time() - started
        stopping.join(timeout=15)
    assert str(broke.value).startswith(f"the MCP session with {url} broke: ")
    assert elapsed < 5.0
    assert task.live_credentials == 0  # the call's credential was released on the way out
    assert served.tool_saw == []
