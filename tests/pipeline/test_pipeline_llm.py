"""An LLM stage through the OpenAI adapter: the real ``openai`` client talking to the offline stand-in model over
loopback, its tool calls run by the stage's guard task with credentials delegated from the stage's token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

openai = pytest.importorskip("openai")

from pipeline_support import CEILING, TRIAGE, ended, issued, support_tools  # noqa: E402
from support import Recorder, assert_dead, audit  # noqa: E402

from agentwrit_tools import AsyncBroker, Broker  # noqa: E402
from agentwrit_tools.adapters.openai import arun_chat_loop, run_chat_loop  # noqa: E402
from agentwrit_tools.offline import StandInModel, parse_rules  # noqa: E402
from agentwrit_tools.pipeline import Pipeline, Stage, StageContext  # noqa: E402

RULES = parse_rules(
    {
        "rules": [
            {
                "name": "research",
                "description": "look the topic up, then answer",
                "when": r"(?i)ticket (?P<ticket_id>T-\d+) is about (?P<topic>\w+)",
                "calls": [{"tool": "search_kb", "arguments": {"article": "kb-{topic}"}}],
                "answer": "Answer for {ticket_id}: {results}",
            },
            {
                "name": "overreach",
                "description": "misbehave: reply to someone else's ticket, and call a tool the stage was not given",
                "when": r"(?i)overreach on (?P<ticket_id>T-\d+)",
                "calls": [
                    {"tool": "search_kb", "arguments": {"article": "kb-refund"}},
                    {
                        "tool": "post_reply",
                        "arguments": {"ticket_id": "{ticket_id}", "text": "hi"},
                        "misbehave": {"kind": "other_subject", "argument": "ticket_id", "value": "T-2"},
                    },
                    {
                        "tool": "read_ticket",
                        "arguments": {"ticket_id": "{ticket_id}"},
                        "misbehave": {"kind": "unoffered_tool"},
                    },
                ],
                "answer": "Tried: {results}",
            },
        ]
    }
)
KNOWLEDGE = ["read:kb:*", "write:replies:T-1"]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInModel]:
    with StandInModel(RULES) as model:
        yield model


def llm_pipeline(
    recorder: Recorder, ask: str, client_model: Any, stand_in: StandInModel, *, use_async: bool
) -> Pipeline:
    tools = support_tools(recorder)
    offered = [tools["search_kb"], tools["post_reply"]]

    def triage(ctx: StageContext) -> str:
        recorder.saw("stage:triage", ctx.credential)
        return ask

    def messages(ctx: StageContext) -> list[dict[str, str]]:
        return [{"role": "system", "content": "You answer support tickets."}, {"role": "user", "content": ctx.input}]

    def knowledge(ctx: StageContext) -> Any:
        recorder.saw("stage:knowledge", ctx.credential)
        return run_chat_loop(client_model, ctx.task, model=stand_in.model, messages=messages(ctx))

    async def aknowledge(ctx: StageContext) -> Any:
        recorder.saw("stage:knowledge", ctx.credential)
        return await arun_chat_loop(client_model, ctx.task, model=stand_in.model, messages=messages(ctx))

    body = aknowledge if use_async else knowledge
    return Pipeline([Stage("triage", TRIAGE, triage), Stage("knowledge", KNOWLEDGE, body, tools=offered)])


def test_an_llm_stage_calls_tools_with_credentials_delegated_from_its_stage(
    client: Broker, operator: Broker, task_id: str, stand_in: StandInModel
) -> None:
    recorder = Recorder(validate=operator.validate)
    with openai.OpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model:
        pipeline = llm_pipeline(recorder, "Ticket T-1 is about refund.", model, stand_in, use_async=False)
        result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    loop = result.output
    assert loop.finished
    assert "Answer for T-1" in loop.output_text
    [call] = recorder.of("search_kb")
    assert call.scope == ("read:kb:kb-refund",)
    lineage = (recorder.one("stage:triage").agent_id, recorder.one("stage:knowledge").agent_id)
    assert tuple(r.agent for r in call.validated.delegation_chain) == lineage
    assert_dead(operator, recorder.seen)
    assert issued(operator, task_id) <= ended(operator, task_id)


def test_an_llm_stage_cannot_reach_past_its_stage(
    client: Broker, operator: Broker, task_id: str, stand_in: StandInModel
) -> None:
    """The model asks for another ticket and for a tool the stage was not offered: refused, nothing minted."""
    recorder = Recorder()
    with openai.OpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model:
        pipeline = llm_pipeline(recorder, "Please overreach on T-1", model, stand_in, use_async=False)
        result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    loop = result.output
    kinds = sorted((r.tool, r.error_kind) for r in loop.results)
    assert kinds == [("post_reply", "outside_ceiling"), ("read_ticket", "unknown_tool"), ("search_kb", None)]
    assert [s.label for s in recorder.seen if not s.label.startswith("stage:")] == ["search_kb"]
    details = " ".join(e.detail for e in audit(operator, task_id, "agent_registered", "delegation_created"))
    assert "T-2" not in details
    assert "read:tickets:T-1" not in details


@pytest.mark.anyio
async def test_an_async_llm_stage_through_the_async_adapter(
    aclient: AsyncBroker, operator: Broker, task_id: str, stand_in: StandInModel
) -> None:
    recorder = Recorder(validate=operator.validate)
    async with openai.AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as model:
        pipeline = llm_pipeline(recorder, "Ticket T-1 is about refund.", model, stand_in, use_async=True)
        result = await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert result.output.finished
    [call] = recorder.of("search_kb")
    assert len(call.validated.delegation_chain) == 2
    assert_dead(operator, recorder.seen)
