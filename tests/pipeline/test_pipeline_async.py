"""The async run: the same flows through the async edge — lineage, concurrent calls, halts, errors, cancellation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pipeline_support import CEILING, KNOWLEDGE, TRIAGE, assert_all_dead, ended, issued, support_tools
from support import Recorder, audit

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError, ToolResult
from agentwrit_tools.pipeline import DelegationRefused, Pipeline, Stage, StageContext, stage
from agentwrit_tools.trace import ListSink

pytestmark = pytest.mark.anyio


async def test_three_async_stages_narrow_with_concurrent_calls_each_carrying_the_lineage(
    aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder(validate=operator.validate)
    tools = support_tools(recorder)

    @stage(TRIAGE)
    async def triage(ctx: StageContext) -> str:
        recorder.saw("stage:triage", ctx.credential)
        assert (await ctx.acall(tools["read_ticket"], {"ticket_id": "T-1"})).ok
        return "T-1"

    @stage(KNOWLEDGE)
    async def knowledge(ctx: StageContext) -> dict[str, Any]:
        recorder.saw("stage:knowledge", ctx.credential)
        results: list[ToolResult] = []

        async def lookup(article: str) -> None:
            results.append(await ctx.acall(tools["search_kb"], {"article": article}))

        async with anyio.create_task_group() as group:
            for article in ("kb-1", "kb-2", "kb-3"):
                group.start_soon(lookup, article)
        assert all(result.ok for result in results)
        return {"ticket": ctx.input, "articles": len(results)}

    def response(ctx: StageContext) -> str:  # a plain function on the async path: runs in a worker thread
        recorder.saw("stage:response", ctx.credential)
        return f"reply to {ctx.input['ticket']} citing {ctx.input['articles']}"

    pipeline = Pipeline([triage, knowledge, Stage("response", lambda v: f"write:replies:{v['ticket']}", response)])
    result = await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)

    assert result.output == "reply to T-1 citing 3"
    triage_agent = recorder.one("stage:triage").agent_id
    knowledge_agent = recorder.one("stage:knowledge").agent_id
    assert recorder.one("stage:response").chain == (triage_agent, knowledge_agent)
    assert recorder.one("stage:response").scope == ("write:replies:T-1",)
    lookups = recorder.of("search_kb")
    assert sorted(s.scope[0] for s in lookups) == ["read:kb:kb-1", "read:kb:kb-2", "read:kb:kb-3"]
    assert len({s.jti for s in lookups}) == len({s.agent_id for s in lookups}) == 3  # never shared
    for seen in lookups:
        assert tuple(r.agent for r in seen.validated.delegation_chain) == (triage_agent, knowledge_agent)
    assert tuple(r.agent for r in recorder.one("read_ticket").validated.delegation_chain) == (triage_agent,)
    assert all(record.released for record in result.minted)
    assert_all_dead(operator, task_id, recorder)


async def test_an_async_halt_mints_nothing_downstream(aclient: AsyncBroker, operator: Broker, task_id: str) -> None:
    async def triage(ctx: StageContext) -> Any:
        ctx.halt("no verified customer")

    async def knowledge(ctx: StageContext) -> Any:
        raise AssertionError("never runs")

    pipeline = Pipeline([Stage("triage", TRIAGE, triage), Stage("knowledge", KNOWLEDGE, knowledge)])
    result = await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert (result.status, result.halted_by, result.reason) == ("halted", "triage", "no verified customer")
    assert len(audit(operator, task_id, "agent_registered")) == 1
    assert issued(operator, task_id) <= ended(operator, task_id)


async def test_an_exception_in_an_async_stage_releases_everything(
    aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    tools = support_tools(recorder)

    async def knowledge(ctx: StageContext) -> Any:
        recorder.saw("stage:knowledge", ctx.credential)
        assert (await ctx.acall(tools["search_kb"], {"article": "kb-1"})).ok
        raise ValueError("bad article")

    async def triage(ctx: StageContext) -> Any:
        recorder.saw("stage:triage", ctx.credential)

    pipeline = Pipeline([Stage("triage", TRIAGE, triage), Stage("knowledge", KNOWLEDGE, knowledge)])
    with pytest.raises(ValueError, match="bad article"):
        await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert_all_dead(operator, task_id, recorder)


async def test_a_cancelled_run_still_releases_everything(aclient: AsyncBroker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tools = support_tools(recorder)
    sink = ListSink()
    started = anyio.Event()

    async def knowledge(ctx: StageContext) -> Any:
        recorder.saw("stage:knowledge", ctx.credential)
        assert (await ctx.acall(tools["search_kb"], {"article": "kb-1"})).ok
        started.set()
        await anyio.sleep_forever()

    pipeline = Pipeline([Stage("triage", TRIAGE, lambda ctx: None), Stage("knowledge", KNOWLEDGE, knowledge)])
    async with anyio.create_task_group() as group:

        async def run() -> None:
            await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[sink])

        group.start_soon(run)
        await started.wait()
        group.cancel_scope.cancel()

    assert_all_dead(operator, task_id, recorder)
    assert sink[-1].type == "pipeline_finished"
    assert (sink[-1].status, sink[-1].release_failed) == ("cancelled", 0)  # type: ignore[attr-defined]


async def test_an_async_widening_is_refused(aclient: AsyncBroker, operator: Broker, task_id: str) -> None:
    pipeline = Pipeline([Stage("knowledge", KNOWLEDGE, lambda ctx: None), Stage("response", TRIAGE, lambda ctx: None)])
    with pytest.raises(DelegationRefused, match=r"needs read:tickets:\*"):
        await pipeline.arun(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert audit(operator, task_id) == []


async def test_the_wrong_broker_or_an_async_stage_on_the_sync_path_is_refused_before_minting(
    aclient: AsyncBroker, client: Broker, operator: Broker, task_id: str
) -> None:
    async def knowledge(ctx: StageContext) -> None:
        return None

    pipeline = Pipeline([Stage("knowledge", KNOWLEDGE, knowledge)])
    with pytest.raises(ConfigurationError, match=r"is async: use await pipeline\.arun"):
        pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    with pytest.raises(ConfigurationError, match="needs a Broker"):
        pipeline.run(aclient, orch_id="desk", task_id=task_id, ceiling=CEILING)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs an AsyncBroker"):
        await pipeline.arun(client, orch_id="desk", task_id=task_id, ceiling=CEILING)  # type: ignore[arg-type]
    assert audit(operator, task_id) == []
