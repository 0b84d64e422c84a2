"""The real ``openai`` client, sync and async, doing chat-completions tool calls against the stand-in over loopback."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from stand_in_support import CHAT_TOOLS, run_tool

from agentwrit_tools.offline import MARKER, MODEL_ID, StandInModel

openai = pytest.importorskip("openai")


def tool_loop(client: Any, text: str, *, max_turns: int = 6, **options: Any) -> tuple[list[list[str]], str]:
    """What an application does: call the model, run the tools it asks for, send results back, until it answers."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": text}]
    turns: list[list[str]] = []
    for _ in range(max_turns):
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=CHAT_TOOLS, **options)
        choice = completion.choices[0]
        if choice.finish_reason == "stop":
            return turns, choice.message.content
        assert choice.finish_reason == "tool_calls"
        messages.append(choice.message.model_dump(exclude_none=True))
        turns.append([call.function.name for call in choice.message.tool_calls])
        for call in choice.message.tool_calls:
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": run_tool(call.function.name, call.function.arguments),
                }
            )
    raise AssertionError("the stand-in did not finish")


def test_a_tool_call_round_trip_ends_in_a_labelled_answer_built_from_the_result(client: Any) -> None:
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Show the record of P-1042"}], tools=CHAT_TOOLS
    )
    assert first.model == MODEL_ID
    assert first.system_fingerprint is not None
    assert "stand-in" in first.system_fingerprint
    (choice,) = first.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_record"
    assert json.loads(call.function.arguments) == {"patient_id": "P-1042"}

    output = run_tool(call.function.name, call.function.arguments)
    final = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "Show the record of P-1042"},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": output},
        ],
        tools=CHAT_TOOLS,
    )
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.tool_calls is None
    assert final.choices[0].message.content == f"{MARKER} Record of P-1042: {output}"
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens


def test_parallel_calls_and_a_follow_up_chain_then_an_answer(client: Any) -> None:
    turns, answer = tool_loop(client, "Full chart for P-7, please")
    assert turns == [["get_record", "get_labs"], ["get_physician"]]
    assert answer.startswith(MARKER)
    for expected in ('"name": "Ada"', "hb ok", "Dr. Quinn"):
        assert expected in answer


def test_parallel_tool_calls_false_gives_one_call_per_turn(client: Any) -> None:
    turns, _ = tool_loop(client, "Full chart for P-7", parallel_tool_calls=False)
    assert turns == [["get_record"], ["get_labs"], ["get_physician"]]


def test_scripted_misbehaviour_reaches_the_client_unlabelled(client: Any) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "show me everyone"}], tools=CHAT_TOOLS
    )
    calls = completion.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_record", {"patient_id": "*"}),
        ("drop_tables", {}),  # never offered: the guard has to refuse it
    ]


def test_no_matching_rule_is_a_plain_answer_saying_what_it_can_do(client: Any) -> None:
    completion = client.chat.completions.create(
        model="any-model", messages=[{"role": "user", "content": "Tell a joke"}]
    )
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert content.startswith(MARKER)
    assert "not a language model" in content
    assert "show a patient's record" in content


def test_streaming_tool_calls_and_text(client: Any) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Full chart for P-7"}],
        tools=CHAT_TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    with stream:
        for chunk in stream:
            assert chunk.model == MODEL_ID
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for delta in choice.delta.tool_calls or []:
                    entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    entry["id"] += delta.id or ""
                    entry["name"] += delta.function.name or ""
                    entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert usage is not None
    assert usage.total_tokens > 0
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_record", {"patient_id": "P-7"}),
        ("get_labs", {"patient_id": "P-7", "limit": 3}),
    ]
    assert all(c["id"].startswith("call_") for c in calls.values())

    messages = [{"role": "user", "content": "hello?"}]
    plain = client.chat.completions.create(model="m", messages=messages).choices[0].message.content
    with client.chat.completions.create(model="m", messages=messages, stream=True) as text_stream:
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in text_stream if chunk.choices)
    assert streamed == plain


def test_the_same_request_gets_the_same_response(client: Any) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "record of P-9"}], "tools": CHAT_TOOLS}
    first = client.chat.completions.create(**request)
    second = client.chat.completions.create(**request)
    assert first.model_dump() == second.model_dump()


def test_raw_responses_carry_the_stand_in_label(client: Any) -> None:
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["server"].startswith("agentwrit-stand-in")
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().choices[0].message.content.startswith(MARKER)


def test_models_endpoint_names_the_stand_in(client: Any) -> None:
    (model,) = client.models.list().data
    assert model.id == MODEL_ID
    assert "not a language model" in model.owned_by
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID


def test_request_bodies_are_recorded_for_tests_and_demos(stand_in: StandInModel, client: Any) -> None:
    stand_in.clear_requests()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "record of P-3"}], tools=CHAT_TOOLS)
    (body,) = stand_in.requests
    assert body["messages"] == [{"role": "user", "content": "record of P-3"}]
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_record", "get_labs", "get_physician"]


@pytest.mark.anyio
async def test_async_client_round_trip_and_concurrency(stand_in: StandInModel) -> None:
    async with openai.AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as client:
        first = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "record of P-5"}], tools=CHAT_TOOLS
        )
        (call,) = first.choices[0].message.tool_calls
        final = await client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": "record of P-5"},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "R5"},
            ],
            tools=CHAT_TOOLS,
        )
        assert final.choices[0].message.content == f"{MARKER} Record of P-5: R5"

        answers: dict[int, str] = {}

        async def ask(i: int) -> None:
            completion = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"record of P-{i}"}], tools=CHAT_TOOLS
            )
            answers[i] = completion.choices[0].message.tool_calls[0].function.arguments

        async with anyio.create_task_group() as group:
            for i in range(20):
                group.start_soon(ask, i)
        assert answers == {i: json.dumps({"patient_id": f"P-{i}"}) for i in range(20)}

        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async with stream:
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        assert text.startswith(MARKER)
