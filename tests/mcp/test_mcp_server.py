"""The protected MCP server on its own: what it answers to each kind of bearer, in the MCP authorization spec's
terms (401 + RFC 9728 metadata link, 403 ``insufficient_scope`` naming the scope), and why a token taken from one
call is worth nothing on another tool, other arguments or another server."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_support import ServedMCP

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError, Credential, Task, Verifier
from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.resource.mcp import METADATA_PATH, protect

pytestmark = pytest.mark.anyio


def _mint(client: Broker, scope: str, audience: str | None) -> Credential:
    return client.mint(scope, orch_id="clinic", task_id=f"mcp-{secrets.token_hex(4)}", audience=audience)


def _post(url: str, message: Any, token: str | None = None) -> httpx.Response:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(url, content=json.dumps(message), headers=headers, timeout=10)


def _call(name: str, arguments: dict[str, Any], rpc_id: int = 7) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def _metadata_url(url: str) -> str:
    return url.replace("/mcp", METADATA_PATH + "/mcp")


def test_the_protected_resource_metadata_is_served_at_both_well_known_paths(served: ServedMCP, broker: Any) -> None:
    base = served.url.removesuffix("/mcp")
    for path in (METADATA_PATH, METADATA_PATH + "/mcp"):
        answer = httpx.get(base + path, timeout=10)
        assert answer.status_code == 200
        document = answer.json()
        assert document["resource"] == served.url
        assert document["authorization_servers"] == [broker.url]
        assert document["bearer_methods_supported"] == ["header"]
        assert "read:records:{patient_id}" in document["scopes_supported"]


def test_no_token_is_401_pointing_at_the_metadata(served: ServedMCP) -> None:
    answer = _post(served.url, _call("get_record", {"patient_id": "P-1"}))
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge == f'Bearer resource_metadata="{_metadata_url(served.url)}"'
    body = answer.json()
    assert body["id"] == 7
    assert body["error"]["data"]["error_code"] == "unauthorized"
    assert served.tool_saw == []


def test_a_token_for_other_arguments_or_another_tool_is_403_naming_the_scope(served: ServedMCP, client: Broker) -> None:
    token = _mint(client, "read:records:P-1", served.url).access_token
    other_patient = _post(served.url, _call("get_record", {"patient_id": "P-2"}), token)
    other_tool = _post(served.url, _call("get_labs", {"patient_id": "P-1"}), token)
    for answer, needed in ((other_patient, "read:records:P-2"), (other_tool, "read:labs:P-1")):
        assert answer.status_code == 403
        challenge = answer.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert f'scope="{needed}"' in challenge
        assert f'resource_metadata="{_metadata_url(served.url)}"' in challenge
        assert answer.json()["error"]["data"]["scope"] == needed
        assert token not in answer.text
    assert served.tool_saw == []


@pytest.mark.parametrize("audience", ["http://127.0.0.1:1/mcp", None], ids=["another-server", "no-server"])
def test_a_token_not_bound_to_this_server_is_401(served: ServedMCP, client: Broker, audience: str | None) -> None:
    token = _mint(client, "read:records:P-1", audience).access_token
    answer = _post(served.url, _call("get_record", {"patient_id": "P-1"}), token)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert served.access[-1].reason == "audience"
    assert served.tool_saw == []


def test_a_released_token_is_refused_once_the_revocation_bound_has_passed(served: ServedMCP, client: Broker) -> None:
    credential = _mint(client, "read:records:P-1", served.url)
    credential.release()
    time.sleep(0.3)  # the server's verifier learns of revocations within 0.2 s (its revocation feed bound)
    answer = _post(served.url, _call("get_record", {"patient_id": "P-1"}), credential.access_token)
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == "token has been revoked"
    assert served.tool_saw == []


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (_call("delete_all", {"confirm": True}), "'delete_all' has no scope mapping"),
        ({"jsonrpc": "2.0", "id": 1, "method": "resources/list"}, "'resources/list' is not open"),
        ([_call("get_record", {"patient_id": "P-1"})], "batched requests"),
    ],
    ids=["unmapped-tool", "closed-method", "batch"],
)
def test_what_is_not_mapped_is_refused_even_with_a_valid_token(
    served: ServedMCP, client: Broker, message: Any, says: str
) -> None:
    token = _mint(client, "read:records:P-1", served.url).access_token
    answer = _post(served.url, message, token)
    assert answer.status_code == 403
    assert says in answer.json()["error"]["message"]
    assert served.tool_saw == []


def test_arguments_that_cannot_form_a_scope_are_400(served: ServedMCP, client: Broker) -> None:
    token = _mint(client, "read:records:*", served.url).access_token
    for arguments in ({"patient_id": "*"}, {"patient_id": "a:b"}, {}):
        answer = _post(served.url, _call("get_record", arguments), token)
        assert answer.status_code == 400, arguments
        assert answer.json()["error"]["data"]["error_code"] == "invalid_request"
    assert served.tool_saw == []


async def _present(url: str, token: str, tool: str, arguments: dict[str, Any]) -> Any:
    """One tools/call through the real mcp client, with a fixed bearer on every request of the session: its result,
    or the ``MCPError`` it raised (returned, so the session's task group does not wrap it)."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=10) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=10) as session,
    ):
        await session.initialize()
        try:
            return await session.call_tool(tool, arguments)
        except MCPError as exc:
            return exc


async def test_a_token_taken_from_a_real_call_is_refused_on_replay(
    served: ServedMCP, aclient: AsyncBroker, task_id: str
) -> None:
    async with connect(served.url) as conn:
        tools = await mcp_tools(conn, scopes={"get_record": "read:records:{patient_id}"})
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling="read:records:P-1", tools=tools) as task:
            assert (await task.acall("get_record", {"patient_id": "P-1"})).ok
    [taken] = served.bearers()
    for tool, arguments in (("get_record", {"patient_id": "P-2"}), ("get_labs", {"patient_id": "P-1"})):
        refused = await _present(served.url, taken, tool, arguments)
        assert isinstance(refused, MCPError)
        assert refused.error.data["error_code"] == "insufficient_scope"
    # The same call again: the token was released, and the server's verifier learns it within its bound (0.2 s).
    await anyio.sleep(0.3)
    refused = await _present(served.url, taken, "get_record", {"patient_id": "P-1"})
    assert isinstance(refused, MCPError)
    assert refused.error.data["error_code"] == "insufficient_scope"  # 403: known revoked
    assert len(served.tool_saw) == 1  # only the guarded call itself ran


async def test_a_live_token_replayed_through_the_mcp_client_covers_only_its_own_call(
    served: ServedMCP, client: Broker
) -> None:
    token = _mint(client, "read:records:P-1", served.url).access_token
    result = await _present(served.url, token, "get_record", {"patient_id": "P-1"})
    assert result.content[0].text == "record of P-1: Ada Lovelace"
    for tool, arguments, needed in (
        ("get_record", {"patient_id": "P-2"}, "read:records:P-2"),
        ("get_labs", {"patient_id": "P-1"}, "read:labs:P-1"),
    ):
        refused = await _present(served.url, token, tool, arguments)
        assert isinstance(refused, MCPError)
        assert refused.error.data["scope"] == needed
    assert [seen["tool"] for seen in served.tool_saw] == ["get_record"]
    assert served.tool_saw[0]["authorization"] is None


def test_protect_refuses_a_bad_configuration(broker: Any) -> None:
    from mcp_support import ServedMCP as Fresh
    from mcp_support import records_server

    server = records_server(Fresh("http://127.0.0.1:1/mcp"))
    with Verifier(broker.url) as verifier:
        with pytest.raises(ConfigurationError, match="resource"):
            protect(server, verifier=verifier, resource="not a url", scopes={})
        with pytest.raises(ConfigurationError, match="get_record"):
            protect(server, verifier=verifier, resource="http://127.0.0.1:1/mcp", scopes={"get_record": "read:x"})
        with pytest.raises(ConfigurationError, match="verify"):
            protect(server, verifier=object(), resource="http://127.0.0.1:1/mcp", scopes={})  # type: ignore[arg-type]
