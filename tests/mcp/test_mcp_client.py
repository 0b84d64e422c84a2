"""The MCP adapter against a real protected MCP server over streamable HTTP on loopback: one credential per
``tools/call``, presented as that request's bearer, verified by the server, released — and every refusal class of
the guard, with nothing minted and the server never asked."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp_support import SCOPES, ServedMCP
from support import MINTING, audit

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError, Task
from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.trace import Minted, Released

pytestmark = pytest.mark.anyio

CLIENT_SCOPES = {name: SCOPES[name] for name in ("get_record", "get_labs")}


async def _tools(conn: Any, **options: Any) -> list[Any]:
    return await mcp_tools(conn, scopes=options.pop("scopes", CLIENT_SCOPES), **options)


async def test_a_guarded_call_is_minted_presented_verified_by_the_server_and_released(
    served: ServedMCP, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    async with connect(served.url) as conn:
        tools = await _tools(conn)
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling="read:records:P-1042", tools=tools) as task:
            result = await task.acall("get_record", {"patient_id": "P-1042"}, call_id="c-1")
    assert result.ok, result.message
    assert result.content == "record of P-1042: Ada Lovelace"
    [seen] = served.tool_saw
    claims = seen["claims"]
    assert claims.jti == result.jti
    assert claims.scope == ("read:records:P-1042",)
    assert claims.aud == (served.url,)  # bound to this server
    assert claims.task_id == task_id
    assert seen["authorization"] is None  # the tool never sees the caller's token
    [allowed] = served.access
    assert allowed.allowed
    assert allowed.jti == result.jti
    assert allowed.route == "tools/call get_record"
    assert [type(e) for e in task.events if isinstance(e, Minted | Released)] == [Minted, Released]
    [row] = task.exposure().calls
    assert row.jti == result.jti
    assert row.released
    released = audit(operator, task_id, "token_released")
    assert [event.resource for event in released] == [result.jti]
    # The bearer went on that tools/call alone: initialize, tools/list and notifications carried none.
    carried = [h for h in served.heard if h.authorization]
    assert [h.rpc for h in carried] == ["tools/call"]


async def test_parallel_calls_in_one_session_each_present_their_own_credential(
    served: ServedMCP, aclient: AsyncBroker, task_id: str
) -> None:
    ceiling = ["read:records:P-1", "read:records:P-2", "read:labs:P-1"]
    calls = [("get_record", "P-1"), ("get_record", "P-2"), ("get_labs", "P-1")]
    async with connect(served.url) as conn:
        tools = await _tools(conn)
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling=ceiling, tools=tools) as task:
            results: list[Any] = [None] * len(calls)

            async def one(index: int, tool: str, patient: str) -> None:
                results[index] = await task.acall(tool, {"patient_id": patient})

            async with anyio.create_task_group() as group:
                for index, (tool, patient) in enumerate(calls):
                    group.start_soon(one, index, tool, patient)
    assert all(r.ok for r in results)
    assert len({r.jti for r in results}) == 3
    by_jti = {seen["claims"].jti: seen for seen in served.tool_saw}
    for result, (tool, patient) in zip(results, calls, strict=True):
        seen = by_jti[result.jti]
        assert seen["tool"] == tool
        assert seen["patient_id"] == patient
        assert seen["claims"].scope == (f"{'read:records' if tool == 'get_record' else 'read:labs'}:{patient}",)
    assert len(served.bearers()) == 3
    assert len(set(served.bearers())) == 3


@pytest.mark.parametrize(
    ("tool", "arguments", "kind", "says"),
    [
        ("get_record", {"patient_id": "P-2000"}, "outside_ceiling", "needs read:records:P-2000"),
        ("get_record", {"patient_id": "*"}, "unsafe_argument", "cannot be used in a scope"),
        ("get_record", {"patient_id": "P-1:*"}, "unsafe_argument", "cannot be used in a scope"),
        ("delete_all", {"confirm": True}, "unknown_tool", "'delete_all'"),
        ("get_record", {"patient": "P-1042"}, "invalid_arguments", "missing required argument(s): patient_id"),
        ("get_record", {"patient_id": "P-1042", "extra": 1}, "invalid_arguments", "additionalProperties"),
    ],
    ids=["cross-patient", "wildcard", "injection", "unmapped", "rejected-missing", "rejected-extra"],
)
async def test_refusals_mint_nothing_and_never_reach_the_server(
    served: ServedMCP,
    aclient: AsyncBroker,
    operator: Broker,
    task_id: str,
    tool: str,
    arguments: dict[str, Any],
    kind: str,
    says: str,
) -> None:
    async with connect(served.url) as conn:
        tools = await _tools(conn)
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling="read:records:P-1042", tools=tools) as task:
            result = await task.acall(tool, arguments)
    assert not result.ok
    assert result.error_kind == kind
    assert says in result.message
    assert audit(operator, task_id, *MINTING) == []
    assert served.tool_saw == []
    assert [h for h in served.heard if h.rpc == "tools/call"] == []


async def test_the_broker_refusing_is_a_denial_and_the_server_is_never_called(
    served: ServedMCP, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    async with connect(served.url) as conn:
        tools = await _tools(conn)
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling="read:records:P-1", tools=tools) as task:
            task._checked_ceiling = ("read:records:*",)  # simulate a bug in the guard's own check
            result = await task.acall("get_record", {"patient_id": "P-2"})
    assert result.denied
    assert result.error_kind == "broker_refused"
    assert audit(operator, task_id, "token_issued") == []
    assert served.tool_saw == []


async def test_a_call_past_its_timeout_is_reported_and_its_credential_released(
    served: ServedMCP, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    async with connect(served.url) as conn:
        tools = await mcp_tools(conn, scopes={"slow": SCOPES["slow"]}, timeout=0.5)
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling="read:records:P-1", tools=tools) as task:
            started = anyio.current_time()
            result = await task.acall("slow", {"patient_id": "P-1"})
            elapsed = anyio.current_time() - started
    assert result.error_kind == "timeout"
    assert result.message == "slow timed out after 0.5 s"
    assert elapsed < 5
    assert [e.resource for e in audit(operator, task_id, "token_released")] == [result.jti]


async def test_a_sync_task_is_told_to_use_acall(served: ServedMCP, client: Broker, task_id: str) -> None:
    async with connect(served.url) as conn:
        tools = await _tools(conn)
    with (
        Task(client, orch_id="clinic", task_id=task_id, ceiling="read:records:P-1") as task,
        pytest.raises(ConfigurationError, match=r"await task\.acall"),
    ):
        task.call(tools[0], {"patient_id": "P-1"})


async def test_unmapped_tools_can_be_made_an_error_and_unknown_mappings_are_one(served: ServedMCP) -> None:
    async with connect(served.url) as conn:
        with pytest.raises(ConfigurationError, match="delete_all"):
            await mcp_tools(conn, scopes=SCOPES, unmapped="error")
        with pytest.raises(ConfigurationError, match="does not have: get_recrod"):
            await mcp_tools(conn, scopes={"get_recrod": SCOPES["get_record"]})
        with pytest.raises(ConfigurationError, match="not an argument"):
            await mcp_tools(conn, scopes={"get_record": "read:records:{patient}"})
        tools = await mcp_tools(conn, scopes=SCOPES)
    assert sorted(tool.name for tool in tools) == ["get_labs", "get_record", "slow"]
    assert all(tool.audience == served.url for tool in tools)
    assert tools[0].parameters["additionalProperties"] is False


def test_the_mcp_modules_export_exactly_their_documented_names() -> None:
    import agentwrit_tools.adapters.mcp as client_side
    import agentwrit_tools.resource.mcp as server_side

    assert set(client_side.__all__) == {
        "DEFAULT_CALL_TIMEOUT",
        "DEFAULT_CONNECT_TIMEOUT",
        "CallBearer",
        "MCPConnection",
        "MCPServerError",
        "connect",
        "mcp_tools",
    }
    assert set(server_side.__all__) == {"METADATA_PATH", "OPEN_METHODS", "ProtectedMCP", "claims_of", "protect"}
