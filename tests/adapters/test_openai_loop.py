"""The OpenAI tool-call loop end to end: real ``openai`` client, real embedded broker, recorded or live model.

The two honest exchanges (one record through chat completions, one through the Responses API) replay from
cassettes — no model server — and can be re-recorded against a real model (see ``model_cassettes``). The
parallel-call tests run against the live stand-in, whose rules make the three calls in one turn every time.
"""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest
from adapter_support import ASK_RECORD, SYSTEM, assert_all_dead, medical_tools
from model_cassettes import model_cassette
from support import Recorder, audit

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError, Task
from agentwrit_tools.adapters.openai import (
    aexecute_tool_calls,
    arun_chat_loop,
    arun_responses_loop,
    execute_tool_calls,
    run_chat_loop,
    run_responses_loop,
)
from agentwrit_tools.offline import StandInModel
from agentwrit_tools.trace import Executed, Minted, Released

RECORD = ("read:records:P-1042",)


def _check_one_exact_credential(task: Task, recorder: Recorder, operator: Broker, task_id: str) -> None:
    """One credential, minted for exactly read:records:P-1042 (verified claims, trace and broker agree), released."""
    assert recorder.scopes == [RECORD]
    [minted] = [e for e in task.events if isinstance(e, Minted)]
    [released] = [e for e in task.events if isinstance(e, Released)]
    assert minted.scope == RECORD
    assert minted.tool == "get_record"
    assert released.jti == minted.jti == recorder.seen[0].jti
    [issued] = audit(operator, task_id, "token_issued")
    assert issued.resource == minted.jti
    assert "scope read:records:P-1042," in issued.detail
    assert_all_dead(operator, recorder, task)


def test_chat_loop_mints_exactly_the_record_asked_for_and_answers(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK_RECORD}]
    with (
        model_cassette("chat_loop_record") as endpoint,
        openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0) as model,
        Task(client, orch_id="medassist", task_id=task_id, ceiling="read:records:P-1042") as task,
    ):
        result = run_chat_loop(model, task, model=endpoint.model, messages=messages, tools=medical_tools(recorder))

    assert result.finished
    assert result.stop_reason == "done"
    assert result.steps == 2
    [call] = result.results
    assert call.ok
    assert call.scope == RECORD
    assert "P-1042" in (result.output_text or "")
    roles = [m["role"] for m in result.transcript]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert result.transcript[3]["tool_call_id"] == result.transcript[2]["tool_calls"][0]["id"] == call.call_id
    assert "Ada Lovelace" in result.transcript[3]["content"]
    assert messages == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK_RECORD}]  # untouched
    _check_one_exact_credential(task, recorder, operator, task_id)


def test_responses_loop_mints_exactly_the_record_asked_for_and_answers(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    with (
        model_cassette("responses_loop_record") as endpoint,
        openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0) as model,
        Task(client, orch_id="medassist", task_id=task_id, ceiling="read:records:P-1042") as task,
    ):
        result = run_responses_loop(
            model, task, model=endpoint.model, input=ASK_RECORD, instructions=SYSTEM, tools=medical_tools(recorder)
        )

    assert result.finished
    assert result.steps == 2
    [call] = result.results
    assert call.ok
    assert "P-1042" in (result.output_text or "")
    kinds = [item.get("type", "message") for item in result.transcript]
    assert kinds[0] == "message"
    assert "function_call" in kinds
    assert kinds[-1] == "message"
    [output] = [item for item in result.transcript if item.get("type") == "function_call_output"]
    assert output["call_id"] == call.call_id
    assert "Ada Lovelace" in output["output"]
    _check_one_exact_credential(task, recorder, operator, task_id)


_ASYNC_LOOPS = {"chat": arun_chat_loop, "responses": arun_responses_loop}


def _history(api: str, text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]} if api == "chat" else {"input": text}


@pytest.mark.anyio
@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_parallel_calls_run_concurrently_each_with_its_own_credential(
    api: str, aclient: AsyncBroker, amodel: openai.AsyncOpenAI, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    # Each body waits until all three are inside: run one after another, they would time out.
    barrier = threading.Barrier(3, timeout=10)
    ceiling = ["read:records:P-1042", "read:labs:P-1042", "read:allergies:P-1042"]
    async with Task(aclient, orch_id="medassist", task_id=task_id, ceiling=ceiling) as task:
        result = await _ASYNC_LOOPS[api](
            amodel,
            task,
            model=stand_in.model,
            tools=medical_tools(recorder, barrier),
            **_history(api, "chart of P-1042"),
        )

    assert result.finished
    assert result.steps == 2
    assert [r.ok for r in result.results] == [True, True, True]
    assert sorted(recorder.scopes) == sorted((scope,) for scope in ceiling)
    jtis = {seen.jti for seen in recorder.seen}
    assert len(jtis) == 3
    assert {r.jti for r in result.results} == jtis
    runs = [e for e in task.events if isinstance(e, Executed)]
    assert len(runs) == 3
    assert max(e.started for e in runs) < min(e.ended for e in runs)  # all three bodies overlapped
    assert_all_dead(operator, recorder, task)


@pytest.mark.anyio
async def test_execute_tool_calls_answers_every_call_in_order(
    aclient: AsyncBroker, amodel: openai.AsyncOpenAI, stand_in: StandInModel, task_id: str
) -> None:
    recorder = Recorder()
    tools = medical_tools(recorder)
    from agentwrit_tools.adapters.openai import chat_tools

    completion = await amodel.chat.completions.create(
        model=stand_in.model, messages=[{"role": "user", "content": "chart of P-7"}], tools=chat_tools(tools)
    )
    async with Task(aclient, orch_id="o", task_id=task_id, ceiling="read:records:*", tools=tools) as task:
        # Only get_record is offered here: the other two names are unknown, refused without a credential.
        replies = await aexecute_tool_calls(task, completion, tools=tools[:1])
    ids = [call.id for call in completion.choices[0].message.tool_calls or []]
    assert [r["tool_call_id"] for r in replies] == ids
    assert [r["role"] for r in replies] == ["tool"] * 3
    assert "Ada Lovelace" in replies[0]["content"]
    assert replies[1]["content"].startswith("unknown tool: 'get_labs'")
    assert replies[2]["content"].startswith("unknown tool: 'get_allergies'")
    assert recorder.scopes == [("read:records:P-7",)]


def test_execute_tool_calls_sync_answers_a_responses_response(
    client: Broker, model: openai.OpenAI, stand_in: StandInModel, task_id: str
) -> None:
    from agentwrit_tools.adapters.openai import responses_tools

    recorder = Recorder()
    tools = medical_tools(recorder)
    response = model.responses.create(model=stand_in.model, input="chart of P-7", tools=responses_tools(tools))
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:P-7", tools=tools) as task:
        items = execute_tool_calls(task, response)
    assert [item["type"] for item in items] == ["function_call_output"] * 3
    assert [item["call_id"] for item in items] == [c.call_id for c in response.output if c.type == "function_call"]
    assert "Ada Lovelace" in items[0]["output"]
    assert items[1]["output"] == "access denied: needs read:labs:P-7, task holds read:records:P-7"
    assert recorder.scopes == [("read:records:P-7",)]


def test_loop_arguments_are_checked_before_anything_is_asked(
    client: Broker, model: openai.OpenAI, stand_in: StandInModel, task_id: str
) -> None:
    tools = medical_tools(Recorder())
    stand_in.clear_requests()
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:*") as task:
        ask = {"model": stand_in.model, "messages": [{"role": "user", "content": "hi"}]}
        with pytest.raises(ConfigurationError, match="max_steps"):
            run_chat_loop(model, task, tools=tools, max_steps=0, **ask)
        with pytest.raises(ConfigurationError, match="stream"):
            run_chat_loop(model, task, tools=tools, stream=True, **ask)
        with pytest.raises(ConfigurationError, match="no tools"):
            run_chat_loop(model, task, **ask)
        with pytest.raises(ConfigurationError, match="messages must be a list"):
            run_chat_loop(model, task, model=stand_in.model, messages="hi", tools=tools)  # type: ignore[arg-type]
    assert stand_in.requests == []
