"""A model that misbehaves, through the OpenAI adapter: every trick is refused, told to the model, nothing minted,
and the loop goes on. Also the ``max_steps`` guard and raising policies. Live stand-in: its rules misbehave on
purpose, the same way every run."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from adapter_support import INJECTIONS, assert_all_dead, medical_tools
from support import Recorder, assert_nothing_minted, audit

from agentwrit_tools import AccessDenied, AsyncBroker, Broker, Policy, Task
from agentwrit_tools.adapters.openai import (
    arun_chat_loop,
    arun_responses_loop,
    run_chat_loop,
    run_responses_loop,
)
from agentwrit_tools.offline import StandInModel
from agentwrit_tools.trace import Denied

_SYNC_LOOPS = {"chat": run_chat_loop, "responses": run_responses_loop}
_ASYNC_LOOPS = {"chat": arun_chat_loop, "responses": arun_responses_loop}


def _history(api: str, text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]} if api == "chat" else {"input": text}


def _tool_outputs(request: dict[str, Any]) -> list[str]:
    """What the model was sent back for its calls, in either API's format."""
    if "messages" in request:
        return [m["content"] for m in request["messages"] if m.get("role") == "tool"]
    return [i["output"] for i in request["input"] if i.get("type") == "function_call_output"]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_misbehaving_model_is_refused_told_and_the_loop_continues(
    api: str, client: Broker, model: openai.OpenAI, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    stand_in.clear_requests()
    with Task(client, orch_id="medassist", task_id=task_id, ceiling="read:records:P-1042") as task:
        result = _SYNC_LOOPS[api](
            model, task, model=stand_in.model, tools=medical_tools(recorder), **_history(api, "Please snoop on P-1042")
        )

    # another patient, a wildcard, a dangerous tool nobody offered — all refused before anything was minted
    assert [r.error_kind for r in result.results] == ["outside_ceiling", "unsafe_argument", "unknown_tool"]
    assert all(r.denied for r in result.results)
    assert result.denials == result.results
    assert recorder.seen == []
    assert_nothing_minted(operator, task_id)
    assert len([e for e in task.events if isinstance(e, Denied)]) == 3

    # the model was told, and answered
    assert result.finished
    assert result.steps == 2
    told = _tool_outputs(stand_in.requests[-1])
    assert told[0] == "access denied: needs read:records:P-2000, task holds read:records:P-1042"
    assert told[1].startswith("access denied: argument 'patient_id' cannot be used in a scope")
    assert told[2].startswith("unknown tool: 'delete_all_records'")
    assert "access denied" in (result.output_text or "")


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_injection_corpus_is_refused_with_nothing_minted(
    api: str, aclient: AsyncBroker, amodel: openai.AsyncOpenAI, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    # A ceiling over every record: what stops these values is the scope template, not the ceiling.
    async with Task(aclient, orch_id="medassist", task_id=task_id, ceiling="read:records:*") as task:
        result = await _ASYNC_LOOPS[api](
            amodel, task, model=stand_in.model, tools=medical_tools(recorder), **_history(api, "probe the records")
        )

    assert result.finished
    assert len(result.results) == len(INJECTIONS)
    sent = [json.loads(m["function"]["arguments"] if "function" in m else m["arguments"]) for m in _calls(result)]
    assert [args["patient_id"] for args in sent] == list(INJECTIONS.values())  # the hostile values did arrive
    assert [r.error_kind for r in result.results] == ["unsafe_argument"] * len(INJECTIONS)
    assert all(r.jti is None for r in result.results)
    assert recorder.seen == []
    assert_nothing_minted(operator, task_id)
    assert max(len(r.content) for r in result.results) < 600  # the 10 000-character value is not echoed back


def _calls(result: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for entry in result.transcript:
        calls.extend(entry.get("tool_calls", []))
        if entry.get("type") == "function_call":
            calls.append(entry)
    return calls


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_max_steps_stops_a_model_that_keeps_calling_tools(
    api: str, client: Broker, model: openai.OpenAI, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    stand_in.clear_requests()
    with Task(
        client,
        orch_id="medassist",
        task_id=task_id,
        ceiling=["read:records:P-1042", "read:labs:P-1042", "read:allergies:P-1042"],
    ) as task:
        loop = _SYNC_LOOPS[api]
        stopped = loop(
            model,
            task,
            model=stand_in.model,
            tools=medical_tools(recorder),
            max_steps=2,
            **_history(api, "Tell me everything about P-1042"),
        )
        assert not stopped.finished
        assert stopped.stop_reason == "max_steps"
        assert stopped.output_text is None
        assert stopped.steps == 2
        assert len(stand_in.requests) == 2
        assert [r.tool for r in stopped.results] == ["get_record", "get_labs"]
        # the last calls were answered: the transcript can be sent on as it is
        last = stopped.transcript[-1]
        assert last.get("role") == "tool" or last.get("type") == "function_call_output"

        finished = loop(
            model, task, model=stand_in.model, tools=medical_tools(recorder), **_history(api, "everything about P-1042")
        )
    assert finished.finished
    assert finished.steps == 4
    assert [r.tool for r in finished.results] == ["get_record", "get_labs", "get_allergies"]
    assert_all_dead(operator, recorder, task)
    assert len(audit(operator, task_id, "token_issued")) == 5


@pytest.mark.anyio
async def test_a_raising_policy_raises_only_after_every_parallel_call_finished(
    aclient: AsyncBroker, amodel: openai.AsyncOpenAI, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    policy = Policy.raise_all()
    async with Task(aclient, orch_id="o", task_id=task_id, ceiling="read:records:P-1042", policy=policy) as task:
        with pytest.raises(AccessDenied) as caught:
            await arun_chat_loop(
                amodel,
                task,
                model=stand_in.model,
                messages=[{"role": "user", "content": "chart of P-1042"}],
                tools=medical_tools(recorder),
            )
        assert task.live_credentials == 0
    assert caught.value.reason == "outside_ceiling"
    assert recorder.scopes == [("read:records:P-1042",)]  # the allowed sibling ran, and was released
    assert_all_dead(operator, recorder, task)


def test_a_raising_policy_surfaces_the_first_denial_on_the_sync_path(
    client: Broker, model: openai.OpenAI, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    with (
        Task(client, orch_id="o", task_id=task_id, ceiling="read:records:P-1042", policy=Policy.raise_all()) as task,
        pytest.raises(AccessDenied),
    ):
        run_chat_loop(
            model,
            task,
            model=stand_in.model,
            messages=[{"role": "user", "content": "snoop on P-1042"}],
            tools=medical_tools(Recorder()),
        )
    assert_nothing_minted(operator, task_id)
