"""Three stages narrowing at each hop, with the lineage in every token the broker validates (sync path)."""

from __future__ import annotations

from typing import Any

from pipeline_support import CEILING, KNOWLEDGE, TRIAGE, ended, issued, scopes_issued, support_tools
from support import Recorder, assert_dead, is_dead

from agentwrit_tools import Broker
from agentwrit_tools.pipeline import Pipeline, Stage, StageContext
from agentwrit_tools.trace import SseSink


def desk(recorder: Recorder) -> Pipeline:
    """triage → knowledge → response, each stage recording its own token and making one tool call."""
    tools = support_tools(recorder)

    def triage(ctx: StageContext) -> dict[str, Any]:
        recorder.saw("stage:triage", ctx.credential)
        result = ctx.call(tools["read_ticket"], {"ticket_id": ctx.input})
        assert result.ok, result.message
        return {"ticket": ctx.input, "topic": result.output["topic"]}

    def knowledge(ctx: StageContext) -> dict[str, Any]:
        recorder.saw("stage:knowledge", ctx.credential)
        result = ctx.call("search_kb", {"article": f"kb-{ctx.input['topic']}"})
        assert result.ok, result.message
        return {**ctx.input, "answer": result.output["text"]}

    def response(ctx: StageContext) -> str:
        recorder.saw("stage:response", ctx.credential)
        result = ctx.call(tools["post_reply"], {"ticket_id": ctx.input["ticket"], "text": ctx.input["answer"]})
        assert result.ok, result.message
        return str(result.output)

    return Pipeline(
        [
            Stage("triage", TRIAGE, triage),
            Stage("knowledge", KNOWLEDGE, knowledge, tools=[tools["search_kb"]]),
            Stage("response", lambda found: f"write:replies:{found['ticket']}", response),
        ]
    )


def test_three_stages_narrow_and_every_call_token_carries_the_lineage(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder(validate=operator.validate)
    result = desk(recorder).run(client, "T-1", orch_id="desk", task_id=task_id, ceiling=CEILING)

    assert result.completed
    assert result.output == "posted to T-1"
    triage, knowledge, response = (recorder.one(f"stage:{name}") for name in ("triage", "knowledge", "response"))
    # Each hop narrows, and each stage token's chain is the stages above it.
    assert set(triage.scope) == set(TRIAGE)
    assert set(knowledge.scope) == set(KNOWLEDGE)
    assert response.scope == ("write:replies:T-1",)
    assert triage.chain == ()
    assert knowledge.chain == (triage.agent_id,)
    assert response.chain == (triage.agent_id, knowledge.agent_id)
    assert len({triage.agent_id, knowledge.agent_id, response.agent_id}) == 3

    # Per-call credentials: exactly the call's scope, their own agent, and the lineage as the broker validated it.
    expected = {
        "read_ticket": (("read:tickets:T-1",), (triage.agent_id,)),
        "search_kb": (("read:kb:kb-refund",), (triage.agent_id, knowledge.agent_id)),
        "post_reply": (("write:replies:T-1",), (triage.agent_id, knowledge.agent_id, response.agent_id)),
    }
    stage_agents = {triage.agent_id, knowledge.agent_id, response.agent_id}
    for tool, (scope, chain) in expected.items():
        call = recorder.one(tool)
        validated = call.validated
        assert tuple(validated.scope) == scope
        assert tuple(record.agent for record in validated.delegation_chain) == chain
        assert validated.depth == len(chain)
        assert validated.task_id == task_id
        assert validated.orch_id == "desk"
        assert call.agent_id not in stage_agents  # a fresh agent per call, not the stage's own identity
        assert call.chain == chain
    # Every chain record is broker-signed and names what the delegator held at the time.
    post = recorder.one("post_reply").validated
    assert [set(record.scope) for record in post.delegation_chain] == [set(TRIAGE), set(KNOWLEDGE), {response.scope[0]}]
    assert all(record.signature for record in post.delegation_chain)

    # The result tells the same story, with no token in it.
    assert result.stage("response").lineage == (triage.agent_id, knowledge.agent_id, response.agent_id)
    assert [record.name for record in result.stages] == ["triage", "knowledge", "response"]
    assert all(record.released for record in result.minted)
    assert {record.kind for record in result.minted} == {"stage", "call", "registration"}
    assert all(seen.token not in repr(result) for seen in recorder.seen)

    # Nothing outlives the run: every token a body held is dead, and the broker released everything it issued.
    assert_dead(operator, recorder.seen)
    assert issued(operator, task_id) <= ended(operator, task_id)
    assert len(issued(operator, task_id)) == len(result.minted)


def test_the_events_tell_the_run_in_order_and_stream_as_server_sent_events(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    messages: list[str] = []
    result = desk(recorder).run(
        client, "T-1", orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[SseSink(messages.append)]
    )
    kinds = [event.type for event in result.events]
    per_call = ["delegated", "minted", "executed", "released"]
    assert kinds == [
        "pipeline_started",
        "stage_started", *per_call, "stage_finished",
        "delegated", "stage_started", *per_call, "stage_finished",
        "delegated", "stage_started", *per_call, "stage_finished",
        "released", "released", "released",
        # the launch tokens of the run's four launchers (the ceiling, each stage's), fetched ahead, revoked with it
        *["launch_token_issued"] * 4, "launch_tokens_ended",
        "pipeline_finished",
    ]  # fmt: skip
    ended = result.events[-2]
    assert (ended.revoked, ended.unrevocable, ended.error) == (4, 0, None)  # type: ignore[attr-defined]
    started = [event for event in result.events if event.type == "stage_started"]
    assert [(e.stage, e.depth, len(e.chain)) for e in started] == [
        ("triage", 0, 0),
        ("knowledge", 1, 1),
        ("response", 2, 2),
    ]  # type: ignore[attr-defined]
    # The handoff's delegated event names the token the next stage starts with, and who delegated it.
    handoffs = [
        e
        for i, e in enumerate(result.events[:-1])
        if e.type == "delegated" and result.events[i + 1].type == "stage_started"
    ]
    assert [e.jti for e in handoffs] == [started[1].jti, started[2].jti]
    assert [e.delegator for e in handoffs] == [started[0].agent_id, started[1].agent_id]  # type: ignore[attr-defined]
    # Stage tokens are released newest first, after the calls.
    stage_releases = [e.jti for e in result.events if e.type == "released" and e.call_id is None]
    assert stage_releases == [started[2].jti, started[1].jti, started[0].jti]
    finished = result.events[-1]
    assert (finished.status, finished.minted, finished.release_failed) == ("completed", len(result.minted), 0)  # type: ignore[attr-defined]

    # Live: one SSE message per event, in order, with no token in any of them.
    assert len(messages) == len(result.events)
    assert [m.split("\n")[1] for m in messages[:2]] == ["event: pipeline_started", "event: stage_started"]
    assert all(m.startswith(f"id: {i}\n") for i, m in enumerate(messages, start=1))
    stream = "".join(messages)
    assert all(seen.token not in stream for seen in recorder.seen)
    # The exposure report covers the three tool calls, not the stage tokens.
    assert len(result.exposure().calls) == 3


def test_each_call_gets_its_own_credential_dead_before_the_next(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tools = support_tools(recorder)

    def knowledge(ctx: StageContext) -> list[str]:
        first = ctx.call(tools["search_kb"], {"article": "kb-1"})
        assert is_dead(operator, recorder.of("search_kb")[0].token)
        second = ctx.call(tools["search_kb"], {"article": "kb-2"})
        return [first.jti or "", second.jti or ""]

    pipeline = Pipeline([Stage("knowledge", "read:kb:*", knowledge)])
    result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    one, two = recorder.of("search_kb")
    assert result.output == [one.jti, two.jti]
    assert one.jti != two.jti
    assert one.agent_id != two.agent_id
    assert (one.scope, two.scope) == (("read:kb:kb-1",), ("read:kb:kb-2",))
    assert one.chain == two.chain == (result.stage("knowledge").agent_id,)


def test_a_call_outside_the_stage_scope_is_denied_and_mints_nothing(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    tools = support_tools(recorder)

    def knowledge(ctx: StageContext) -> Any:
        # The task ceiling allows reading tickets; this stage was not given that.
        return ctx.call(tools["read_ticket"], {"ticket_id": "T-1"})

    pipeline = Pipeline([Stage("triage", TRIAGE, lambda ctx: None), Stage("knowledge", KNOWLEDGE, knowledge)])
    result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    denial = result.output
    assert denial.denied
    assert denial.error_kind == "outside_ceiling"
    assert "read:tickets:T-1" in denial.message
    assert recorder.seen == []
    assert not any("read:tickets:T-1" in detail for detail in scopes_issued(operator, task_id))
    assert {record.kind for record in result.minted} == {"stage", "registration"}


def test_five_stages_reach_the_depth_limit_exactly(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder(validate=operator.validate)
    tools = support_tools(recorder)

    def last(ctx: StageContext) -> int:
        assert ctx.call(tools["search_kb"], {"article": "kb-1"}).ok
        return ctx.depth

    stages = [Stage(f"hop-{i}", "read:kb:*", lambda ctx: None) for i in range(4)]
    result = Pipeline([*stages, Stage("last", "read:kb:*", last)]).run(
        client, orch_id="desk", task_id=task_id, ceiling=CEILING
    )
    assert result.output == 4
    validated = recorder.one("search_kb").validated
    assert validated.depth == 5
    assert tuple(r.agent for r in validated.delegation_chain) == tuple(s.agent_id for s in result.stages)
