"""The real ``openai`` client's Responses API against the stand-in: resent items, stored state, streaming, async."""

from __future__ import annotations

import json
from typing import Any

import pytest
from stand_in_support import RESPONSES_TOOLS, run_tool

from agentwrit_tools.offline import MARKER, MODEL_ID, StandInModel

openai = pytest.importorskip("openai")


def outputs_for(response: Any) -> list[dict[str, str]]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": run_tool(item.name, item.arguments)}
        for item in response.output
        if item.type == "function_call"
    ]


def test_a_round_trip_resending_the_items(client: Any) -> None:
    history: list[Any] = [{"role": "user", "content": "Show the record of P-11"}]
    first = client.responses.create(model="gpt-4o-mini", input=history, tools=RESPONSES_TOOLS)
    assert first.model == MODEL_ID
    assert first.status == "completed"
    (call,) = first.output
    assert call.type == "function_call"
    assert call.name == "get_record"
    assert json.loads(call.arguments) == {"patient_id": "P-11"}
    assert first.output_text == ""

    history += [item.model_dump(exclude_none=True) for item in first.output] + outputs_for(first)
    final = client.responses.create(model="gpt-4o-mini", input=history, tools=RESPONSES_TOOLS)
    assert [item.type for item in final.output] == ["message"]
    assert final.output_text.startswith(f"{MARKER} Record of P-11: ")
    assert '"name": "Ada"' in final.output_text
    assert final.usage is not None
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens


def test_previous_response_id_carries_the_conversation(client: Any) -> None:
    first = client.responses.create(model="m", input="Full chart for P-12", tools=RESPONSES_TOOLS)
    assert [item.name for item in first.output] == ["get_record", "get_labs"]
    second = client.responses.create(
        model="m", previous_response_id=first.id, input=outputs_for(first), tools=RESPONSES_TOOLS
    )
    assert [item.name for item in second.output] == ["get_physician"]
    third = client.responses.create(
        model="m", previous_response_id=second.id, input=outputs_for(second), tools=RESPONSES_TOOLS
    )
    assert "Dr. Quinn" in third.output_text
    assert "hb ok" in third.output_text


def test_an_unknown_previous_response_is_a_bad_request(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", previous_response_id="resp_nope", input="hi")
    assert caught.value.code == "previous_response_not_found"


def test_a_function_call_output_for_no_call_is_refused(client: Any) -> None:
    with pytest.raises(openai.BadRequestError, match="No tool call found"):
        client.responses.create(
            model="m",
            input=[{"type": "function_call_output", "call_id": "call_x", "output": "x"}],
            tools=RESPONSES_TOOLS,
        )


def test_streaming_with_the_sdk_helper_and_raw_events(client: Any) -> None:
    with client.responses.stream(model="m", input="Hello there") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text.startswith(MARKER)
    assert final.output_text == client.responses.create(model="m", input="Hello there").output_text

    events = client.responses.create(model="m", input="Show the record of P-13", tools=RESPONSES_TOOLS, stream=True)
    arguments = ""
    with events:
        for event in events:
            if event.type == "response.function_call_arguments.delta":
                arguments += event.delta
            if event.type == "response.completed":
                completed = event.response
    assert json.loads(arguments) == {"patient_id": "P-13"}
    assert completed.output[0].arguments == arguments


@pytest.mark.anyio
async def test_async_responses_round_trip(stand_in: StandInModel) -> None:
    async with openai.AsyncOpenAI(base_url=stand_in.base_url, api_key="stand-in", max_retries=0) as client:
        first = await client.responses.create(model="m", input="record of P-14", tools=RESPONSES_TOOLS)
        final = await client.responses.create(
            model="m", previous_response_id=first.id, input=outputs_for(first), tools=RESPONSES_TOOLS
        )
        assert final.output_text.startswith(f"{MARKER} Record of P-14")
        async with client.responses.stream(model="m", input="hi") as stream:
            async for _ in stream:
                pass
            text = (await stream.get_final_response()).output_text
        assert text.startswith(MARKER)
