"""MCP tools through the Agents SDK: the real ``Runner`` (stand-in model via the SDK's chat-completions model) calls
a protected MCP server's tools, each call with its own credential bound to that server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner
from mcp_support import SCOPES, ServedMCP
from openai import AsyncOpenAI
from support import audit

from agentwrit_tools import AsyncBroker, Broker, Task
from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.adapters.openai_agents import as_function_tools
from agentwrit_tools.offline import StandInModel, parse_rules

pytestmark = pytest.mark.anyio

RULES = parse_rules(
    {
        "rules": [
            {
                "name": "both",
                "when": r"(?i)record and labs of (?P<patient_id>P-\d+)",
                "calls": [
                    {"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_labs", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_record", "arguments": {"patient_id": "P-2000"}},
                ],
            }
        ]
    }
)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInModel]:
    with StandInModel(RULES) as model:
        yield model


async def test_the_runner_calls_mcp_tools_each_with_its_own_bound_credential(
    stand_in: StandInModel, served: ServedMCP, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    ceiling = ["read:records:P-1042", "read:labs:P-1042"]
    async with (
        AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as client,
        connect(served.url) as conn,
    ):
        tools = await mcp_tools(conn, scopes={name: SCOPES[name] for name in ("get_record", "get_labs")})
        async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling=ceiling, tools=tools) as task:
            agent = Agent(
                name="clinic",
                instructions="Use the tools.",
                tools=as_function_tools(task),
                model=OpenAIChatCompletionsModel(model="stand-in", openai_client=client),
            )
            result = await Runner.run(agent, "record and labs of P-1042", run_config=RunConfig(tracing_disabled=True))
    assert "record of P-1042: Ada Lovelace" in result.final_output
    assert "labs of P-1042: normal" in result.final_output
    assert "access denied: needs read:records:P-2000" in result.final_output
    assert sorted(seen["tool"] for seen in served.tool_saw) == ["get_labs", "get_record"]
    assert all(seen["claims"].aud == (served.url,) for seen in served.tool_saw)
    assert len({seen["claims"].jti for seen in served.tool_saw}) == 2
    assert len(audit(operator, task_id, "token_released")) == 2


HANDOFF_RULES = parse_rules(
    {
        "rules": [
            {
                "name": "refer",
                "when": r"(?i)refer (?P<patient_id>P-\d+) to the lab",
                "calls": [{"tool": "transfer_to_lab", "arguments": {}}],
                "follow_ups": [
                    {
                        "after": "transfer_to_lab",
                        "calls": [{"tool": "get_labs", "arguments": {"patient_id": "{patient_id}"}}],
                    }
                ],
            }
        ]
    }
)


async def test_a_handed_off_agent_calls_mcp_tools_with_credentials_delegated_and_bound_to_the_server(
    served: ServedMCP, aclient: AsyncBroker, task_id: str
) -> None:
    from agentwrit_tools.adapters.openai_agents import DelegatedHandoffs
    from agentwrit_tools.pipeline import Relay

    ceiling = ["read:records:P-1042", "read:labs:P-1042"]
    with StandInModel(HANDOFF_RULES) as stand_in:
        async with (
            AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as client,
            connect(served.url) as conn,
            DelegatedHandoffs(Relay(aclient, orch_id="clinic", task_id=task_id, ceiling=ceiling)) as team,
        ):
            tools = await mcp_tools(conn, scopes={"get_labs": SCOPES["get_labs"]})
            model = OpenAIChatCompletionsModel(model="stand-in", openai_client=client)
            lab = team.agent(Agent(name="lab", instructions="l", model=model), scope="read:labs:P-1042", tools=tools)
            front = team.agent(Agent(name="front", instructions="f", model=model), scope=ceiling, handoffs=[lab])
            result = await Runner.run(front, "refer P-1042 to the lab", run_config=RunConfig(tracing_disabled=True))
    assert "labs of P-1042: normal" in result.final_output
    [seen] = served.tool_saw
    claims = seen["claims"]
    assert claims.aud == (served.url,)  # delegated, and bound to the server
    assert claims.scope == ("read:labs:P-1042",)
    assert len(claims.delegation_chain) == 2  # front's token, then lab's, then this call's
