"""However a run ends — completed, halted, by an exception or an interrupt — nothing it minted stays alive; a
released stage takes its delegates with it (cascade extension); a stage token replayed after the run is refused."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_support import CEILING, KNOWLEDGE, TRIAGE, assert_all_dead, ended, issued, support_tools
from support import Recorder, audit, is_dead

from agentwrit_tools import Broker
from agentwrit_tools.pipeline import Halt, Halted, Pipeline, PipelineFinished, Stage, StageContext
from agentwrit_tools.trace import ListSink, Released


class Boom(RuntimeError):
    pass


def desk(recorder: Recorder, *, knowledge_does: Any = None) -> Pipeline:
    """triage → knowledge → response; every stage records its token and makes one call first."""
    tools = support_tools(recorder)

    def triage(ctx: StageContext) -> str:
        recorder.saw("stage:triage", ctx.credential)
        assert ctx.call(tools["read_ticket"], {"ticket_id": "T-1"}).ok
        return "T-1"

    def knowledge(ctx: StageContext) -> Any:
        recorder.saw("stage:knowledge", ctx.credential)
        assert ctx.call(tools["search_kb"], {"article": "kb-1"}).ok
        return knowledge_does(ctx) if knowledge_does is not None else ctx.input

    def response(ctx: StageContext) -> str:
        recorder.saw("stage:response", ctx.credential)
        assert ctx.call(tools["post_reply"], {"ticket_id": ctx.input, "text": "hi"}).ok
        return "done"

    return Pipeline(
        [
            Stage("triage", TRIAGE, triage),
            Stage("knowledge", KNOWLEDGE, knowledge),
            Stage("response", lambda ticket: f"write:replies:{ticket}", response),
        ]
    )


def test_a_halt_ends_the_run_and_nothing_downstream_is_minted(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    sink = ListSink()

    def no_customer(ctx: StageContext) -> Any:
        ctx.halt("no verified customer")

    result = desk(recorder, knowledge_does=no_customer).run(
        client, orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[sink]
    )
    assert result.halted
    assert (result.halted_by, result.reason, result.output) == ("knowledge", "no verified customer", None)
    assert [r.name for r in result.stages] == ["triage", "knowledge"]
    assert [r.outcome for r in result.stages] == ["ok", "halted"]
    assert recorder.of("stage:response") == []
    assert recorder.of("post_reply") == []
    # The broker never heard of the response stage: no agent registered with its scope, no delegation of it.
    details = [e.detail for e in audit(operator, task_id, "agent_registered", "delegation_created")]
    assert not any("write:replies:T-1" in detail for detail in details)
    assert_all_dead(operator, task_id, recorder)
    halted = [e for e in sink if isinstance(e, Halted)]
    assert [(e.stage, e.reason) for e in halted] == [("knowledge", "no verified customer")]
    finished = sink[-1]
    assert isinstance(finished, PipelineFinished)
    assert finished.status == "halted"


def test_returning_halt_is_the_same_as_raising_it(client: Broker, task_id: str) -> None:
    pipeline = Pipeline(
        [Stage("triage", TRIAGE, lambda ctx: Halt("spam")), Stage("knowledge", KNOWLEDGE, lambda ctx: 1 / 0)]
    )
    result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert (result.status, result.halted_by, result.reason) == ("halted", "triage", "spam")
    assert [r.kind for r in result.minted] == ["stage"]
    assert all(r.released for r in result.minted)


def test_an_exception_mid_stage_releases_everything_and_is_re_raised(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    sink = ListSink()

    def fail(ctx: StageContext) -> Any:
        raise Boom("the knowledge base is on fire")

    with pytest.raises(Boom, match="on fire"):
        desk(recorder, knowledge_does=fail).run(client, orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[sink])
    assert {s.label for s in recorder.seen} == {"stage:triage", "read_ticket", "stage:knowledge", "search_kb"}
    assert_all_dead(operator, task_id, recorder)
    finished = sink[-1]
    assert isinstance(finished, PipelineFinished)
    assert (finished.status, finished.error, finished.release_failed) == ("error", "Boom", 0)
    stage_ends = [(e.stage, e.outcome, e.error) for e in sink if e.type == "stage_finished"]  # type: ignore[attr-defined]
    assert stage_ends == [("triage", "ok", None), ("knowledge", "error", "Boom")]


def test_an_interrupt_mid_stage_releases_everything_and_propagates(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()

    def interrupted(ctx: StageContext) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        desk(recorder, knowledge_does=interrupted).run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert_all_dead(operator, task_id, recorder)


def test_releasing_a_stage_kills_every_token_it_delegated(client: Broker, operator: Broker, task_id: str) -> None:
    """With the broker's cascade extension, the stage at the root of the chain takes the whole chain with it."""
    recorder = Recorder()
    tools = support_tools(recorder)
    held: dict[str, Any] = {}
    observed: dict[str, Any] = {}

    def triage(ctx: StageContext) -> str:
        held["triage"] = ctx.credential
        return "T-1"

    def knowledge(ctx: StageContext) -> str:
        recorder.saw("stage:knowledge", ctx.credential)
        return "T-1"

    def response(ctx: StageContext) -> str:
        recorder.saw("stage:response", ctx.credential)
        assert held["triage"].release()  # the root of the chain goes...
        observed["dead"] = [is_dead(operator, seen.token) for seen in recorder.seen]  # ...and takes the rest
        observed["call"] = ctx.call(tools["post_reply"], {"ticket_id": "T-1", "text": "hi"})
        return "done"

    pipeline = Pipeline(
        [
            Stage("triage", TRIAGE, triage),
            Stage("knowledge", KNOWLEDGE, knowledge),
            Stage("response", "write:replies:T-1", response),
        ]
    )
    sink = ListSink()
    result = pipeline.run(client, orch_id="desk", task_id=task_id, ceiling=CEILING, sinks=[sink])
    assert observed["dead"] == [True, True]
    call = observed["call"]
    assert not call.ok  # a dead stage cannot delegate a call's credential: the tool never ran
    assert recorder.of("post_reply") == []
    cascaded = audit(operator, task_id, "token_revoked")
    assert {e.resource for e in cascaded} >= {s.jti for s in recorder.seen}
    assert all("cascade" in e.detail for e in cascaded)
    # The run's own clean-up found the other two stage tokens already dead (the test released the first itself).
    released = {e.jti: e.already_dead for e in sink if isinstance(e, Released) and e.call_id is None}
    assert released == {result.stage("knowledge").jti: True, result.stage("response").jti: True}
    assert issued(operator, task_id) <= ended(operator, task_id)


def test_a_stage_token_replayed_after_the_run_is_refused(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    result = desk(recorder).run(client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert result.completed
    knowledge = recorder.one("stage:knowledge")
    assert is_dead(operator, knowledge.token)  # the broker's validate: "token is invalid or expired"
