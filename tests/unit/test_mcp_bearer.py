"""The MCP session's auth hook: a call's credential goes on that call's own ``tools/call`` request, and on no other
request — another tool's call, a listing, a notification, another URL, or outside the call."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from agentwrit_tools.adapters.mcp import CallBearer
from agentwrit_tools.adapters.mcp._bearer import presenting

URL = "http://127.0.0.1:8000/mcp"


class FakeCredential:
    """Presents itself as a credential does: a bearer token, or a key-bound one with a proof per request."""

    def __init__(self, *, bound: bool = False) -> None:
        self.bound = bound
        self.asked: list[tuple[str, str]] = []

    def headers_for(self, method: str, url: str) -> dict[str, str]:
        self.asked.append((method, url))
        if self.bound:
            return {"Authorization": "DPoP tok-123", "DPoP": f"proof-{len(self.asked)}"}
        return {"Authorization": "Bearer tok-123"}


CREDENTIAL = FakeCredential()


def _authorized(request: httpx2.Request) -> str | None:
    flow = CallBearer(URL).auth_flow(request)
    sent = next(flow)
    return sent.headers.get("authorization")


def _post(message: Any, url: str = URL) -> httpx2.Request:
    return httpx2.Request("POST", url, content=json.dumps(message).encode())


CALL = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "get_record", "arguments": {}}}


def test_the_call_of_the_tool_carries_its_credential() -> None:
    with presenting("get_record", CREDENTIAL):
        assert _authorized(_post(CALL)) == "Bearer tok-123"


def test_a_key_bound_credential_gets_a_fresh_proof_for_its_request() -> None:
    bound = FakeCredential(bound=True)
    with presenting("get_record", bound):
        first = next(CallBearer(URL).auth_flow(_post(CALL)))
        second = next(CallBearer(URL).auth_flow(_post(CALL)))
    assert first.headers["authorization"] == "DPoP tok-123"
    assert (first.headers["dpop"], second.headers["dpop"]) == ("proof-1", "proof-2")
    assert bound.asked == [("POST", URL), ("POST", URL)]


@pytest.mark.parametrize(
    "request_",
    [
        _post({**CALL, "params": {"name": "get_labs", "arguments": {}}}),
        _post({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}),
        _post({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        _post([CALL]),
        _post(CALL, url="http://127.0.0.1:9000/mcp"),
        httpx2.Request("GET", URL),
        httpx2.Request("POST", URL, content=b"not json"),
    ],
    ids=["other-tool", "listing", "notification", "batch", "other-url", "get-stream", "not-json"],
)
def test_no_other_request_carries_it(request_: httpx2.Request) -> None:
    with presenting("get_record", CREDENTIAL):
        assert _authorized(request_) is None


def test_outside_a_call_nothing_carries_a_credential() -> None:
    assert _authorized(_post(CALL)) is None
    with presenting("get_record", CREDENTIAL):
        pass
    assert _authorized(_post(CALL)) is None
