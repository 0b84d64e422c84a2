"""A stage whose tools are LangChain ``BaseTool``s (the LangChain adapter over the stage's guard task): invoked
with tool calls the way an agent or LangGraph's ``ToolNode`` invokes them, each gets a delegated credential."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core")

from pipeline_support import CEILING, TRIAGE, support_tools
from support import Recorder, assert_dead

from agentwrit_tools import AsyncBroker, Broker
from agentwrit_tools.adapters.langchain import as_langchain_tools
from agentwrit_tools.pipeline import Pipeline, Stage, StageContext

KNOWLEDGE = ["read:kb:*", "write:replies:T-1"]


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def test_langchain_tools_in_a_stage_get_credentials_delegated_from_it(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder(validate=operator.validate)
    tools = support_tools(recorder)

    def knowledge(ctx: StageContext) -> list[Any]:
        recorder.saw("stage:knowledge", ctx.credential)
        by_name = {tool.name: tool for tool in as_langchain_tools(ctx.task)}
        return [
            by_name["search_kb"].invoke(_call("search_kb", {"article": "kb-1"}, "c-1")),
            by_name["post_reply"].invoke(_call("post_reply", {"ticket_id": "T-2", "text": "hi"}, "c-2")),
        ]

    pipeline = Pipeline(
        [
            Stage("triage", TRIAGE, lambda ctx: recorder.saw("stage:triage", ctx.credential)),
            Stage("knowledge", KNOWLEDGE, knowledge, tools=[tools["search_kb"], tools["post_reply"]]),
        ]
    )
    result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    found, refused = result.output
    assert found.status == "success"
    assert refused.status == "error"  # another ticket's reply: outside the stage, nothing minted
    assert "write:replies:T-2" in refused.content
    [call] = recorder.of("search_kb")
    lineage = (recorder.one("stage:triage").agent_id, recorder.one("stage:knowledge").agent_id)
    assert tuple(r.agent for r in call.validated.delegation_chain) == lineage
    assert recorder.of("post_reply") == []
    assert_dead(operator, recorder.seen)


@pytest.mark.anyio
async def test_langchain_tools_in_an_async_stage(aclient: AsyncBroker, operator: Broker, task_id: str) -> None:
    recorder = Recorder(validate=operator.validate)
    tools = support_tools(recorder)

    async def knowledge(ctx: StageContext) -> Any:
        [search] = as_langchain_tools(ctx.task)
        return await search.ainvoke(_call("search_kb", {"article": "kb-1"}, "c-1"))

    pipeline = Pipeline([Stage("knowledge", KNOWLEDGE, knowledge, tools=[tools["search_kb"]])])
    result = await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert result.output.status == "success"
    [call] = recorder.of("search_kb")
    assert tuple(r.agent for r in call.validated.delegation_chain) == (result.stage("knowledge").agent_id,)
