"""Both OpenAI wire formats without sockets: request validation, response shapes, stream framing, determinism."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentwrit_tools.offline import MARKER, MODEL_ID, InvalidRequest, Planner, parse_rules
from agentwrit_tools.offline._chat import ChatExchange, chat_chunks, chat_completion
from agentwrit_tools.offline._responses import ResponsesExchange

PLANNER = Planner(
    parse_rules(
        [
            {
                "name": "record",
                "when": r"(?i)record.*\b(?P<patient_id>P-\d+)",
                "calls": [
                    {"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_labs", "arguments": {"patient_id": "{patient_id}"}},
                ],
            }
        ]
    )
)
CHAT_TOOLS = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in ("get_record", "get_labs")]
RESPONSES_TOOLS = [{"type": "function", "name": n, "parameters": {}} for n in ("get_record", "get_labs")]


def chat(body: dict[str, Any]) -> ChatExchange:
    return ChatExchange.handle(PLANNER, {"model": "gpt-4o", **body})


def no_history(_: str) -> None:
    return None


def responses(body: dict[str, Any], history: Any = no_history) -> ResponsesExchange:
    return ResponsesExchange.handle(PLANNER, {"model": "gpt-4o", **body}, history)


def test_chat_tool_calls_have_openai_shape() -> None:
    body = chat_completion(chat({"messages": [{"role": "user", "content": "record of P-1"}], "tools": CHAT_TOOLS}))
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == MODEL_ID
    assert "stand-in" in body["system_fingerprint"]
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] is None
    assert [call["type"] for call in message["tool_calls"]] == ["function", "function"]
    assert [json.loads(call["function"]["arguments"]) for call in message["tool_calls"]] == [{"patient_id": "P-1"}] * 2
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_text_parts_and_system_messages_are_read_as_openai_sends_them() -> None:
    messages = [
        {"role": "system", "content": "You must never say record of P-9."},
        {"role": "developer", "content": "ignored"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "the record "},
                {"type": "image_url"},
                {"type": "text", "text": "of P-2"},
            ],
        },
    ]
    message = chat_completion(chat({"messages": messages, "tools": CHAT_TOOLS}))["choices"][0]["message"]
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"patient_id": "P-2"}


def test_the_same_request_gives_byte_identical_responses_and_another_gives_other_ids() -> None:
    request = {"messages": [{"role": "user", "content": "record of P-1"}], "tools": CHAT_TOOLS}
    first = json.dumps(chat_completion(chat(request)))
    assert first == json.dumps(chat_completion(chat(json.loads(json.dumps(request)))))
    other = chat_completion(chat({**request, "messages": [{"role": "user", "content": "record of P-2"}]}))
    assert json.loads(first)["id"] != other["id"]


def test_a_chat_stream_rebuilds_the_same_tool_calls() -> None:
    request = {"messages": [{"role": "user", "content": "record of P-1"}], "tools": CHAT_TOOLS, "stream": True}
    exchange = chat(request)
    chunks = list(chat_chunks(exchange))
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert {chunk["id"] for chunk in chunks} == {exchange.response_id}
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks][-1] == "tool_calls"
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
    rebuilt: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls", []):
            entry = rebuilt.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.get("id", "")
            entry["name"] += delta["function"].get("name", "")
            entry["arguments"] += delta["function"]["arguments"]
    expected = chat_completion(exchange)["choices"][0]["message"]["tool_calls"]
    assert [rebuilt[i] for i in sorted(rebuilt)] == [
        {"id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}
        for call in expected
    ]
    assert "usage" not in chunks[0]


def test_a_chat_text_stream_joins_to_the_answer_and_can_end_with_usage() -> None:
    request = {
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    exchange = chat(request)
    chunks = list(chat_chunks(exchange))
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])
    assert text == exchange.decision.content
    assert text.startswith(MARKER)
    assert len(chunks) > 3
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == exchange.usage
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


def test_chat_tool_results_come_back_in_tool_messages() -> None:
    first = chat_completion(chat({"messages": [{"role": "user", "content": "record of P-1"}], "tools": CHAT_TOOLS}))
    assistant = first["choices"][0]["message"]
    messages = [
        {"role": "user", "content": "record of P-1"},
        assistant,
        *(
            {"role": "tool", "tool_call_id": call["id"], "content": f"out-{i}"}
            for i, call in enumerate(assistant["tool_calls"])
        ),
    ]
    final = chat_completion(chat({"messages": messages, "tools": CHAT_TOOLS}))["choices"][0]
    assert final["finish_reason"] == "stop"
    assert "get_record: out-0" in final["message"]["content"]
    assert "get_labs: out-1" in final["message"]["content"]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "Missing required parameter"),
        ({"model": "m"}, "messages", "Missing required parameter"),
        ({"model": "m", "messages": []}, "messages", "at least 1"),
        ({"model": "m", "messages": "hello"}, "messages", "valid list"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model", "valid string"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "Input should be"),
        ({"model": "m", "messages": [{"role": "user", "content": 7}]}, "messages[0].content", "Invalid value"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id", "Missing"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "call_1"}]},
            "messages[0].role",
            "must be a response to a preceding message with 'tool_calls'",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                    },
                ],
            },
            "messages",
            "did not have response messages: c1",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                    },
                    {"role": "user", "content": "x"},
                ],
            },
            "messages[1].role",
            "c1",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n", "exactly one choice"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            "tools[0].function",
            "Missing",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "function"}},
            "tool_choice",
            "name",
        ),
    ],
)
def test_chat_requests_openai_would_refuse_are_refused(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ChatExchange.handle(PLANNER, body)
    assert caught.value.param == param
    assert words in caught.value.message


def test_refusals_never_echo_request_text() -> None:
    secret = "P-SECRET-VALUE-42"
    with pytest.raises(InvalidRequest) as caught:
        ChatExchange.handle(PLANNER, {"model": "m", "messages": [{"role": secret, "content": secret}]})
    assert secret not in caught.value.message


def test_tool_choice_narrows_or_disables_the_offer() -> None:
    messages = [{"role": "user", "content": "record of P-1"}]
    named = chat(
        {
            "messages": messages,
            "tools": CHAT_TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "get_labs"}},
        }
    )
    assert [call.name for call in named.decision.calls] == ["get_labs"]
    disabled = chat({"messages": messages, "tools": CHAT_TOOLS, "tool_choice": "none"})
    assert disabled.decision.calls == ()
    sequential = chat({"messages": messages, "tools": CHAT_TOOLS, "parallel_tool_calls": False})
    assert [call.name for call in sequential.decision.calls] == ["get_record"]


def test_responses_function_calls_and_final_message() -> None:
    first = responses({"input": "record of P-1", "tools": RESPONSES_TOOLS})
    body = first.response
    assert body["object"] == "response"
    assert body["status"] == "completed"
    assert body["id"].startswith("resp_")
    assert body["model"] == MODEL_ID
    assert [item["type"] for item in body["output"]] == ["function_call", "function_call"]
    assert all(item["call_id"].startswith("call_") and item["id"].startswith("fc_") for item in body["output"])
    outputs = [{"type": "function_call_output", "call_id": item["call_id"], "output": "R"} for item in body["output"]]
    second = responses(
        {"input": [{"role": "user", "content": "record of P-1"}, *body["output"], *outputs], "tools": RESPONSES_TOOLS}
    )
    (message,) = second.response["output"]
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    (text,) = message["content"]
    assert text["type"] == "output_text"
    assert text["text"].startswith(MARKER)
    assert "get_record: R" in text["text"]
    assert second.response["usage"]["total_tokens"] > 0


def test_responses_previous_response_id_continues_a_stored_conversation() -> None:
    first = responses(
        {
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "record of P-3"}]}],
            "tools": RESPONSES_TOOLS,
        }
    )
    store = {first.response["id"]: first.items}
    outputs = [
        {"type": "function_call_output", "call_id": item["call_id"], "output": "R"} for item in first.response["output"]
    ]
    second = responses(
        {"previous_response_id": first.response["id"], "input": outputs, "tools": RESPONSES_TOOLS}, store.get
    )
    assert second.response["output"][0]["type"] == "message"
    assert second.response["previous_response_id"] == first.response["id"]
    with pytest.raises(InvalidRequest) as caught:
        responses({"previous_response_id": "resp_unknown", "input": "hi"})
    assert caught.value.code == "previous_response_not_found"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": [{"type": "telepathy"}]}, "input[0]", "unsupported input item type"),
        ({"input": [{"role": "user"}]}, "input[0].content", "Missing"),
        ({"input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]}, "input", "No tool call found"),
        (
            {"input": [{"type": "function_call", "call_id": "c9", "name": "f", "arguments": "{}"}]},
            "input",
            "No tool output",
        ),
        ({"input": 5}, "input", "valid string"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name", "Missing"),
    ],
)
def test_responses_requests_openai_would_refuse_are_refused(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        responses(body)
    assert caught.value.param == param
    assert words in caught.value.message


def test_responses_events_are_numbered_and_rebuild_the_response() -> None:
    for text in ("record of P-1", "hello"):
        exchange = responses({"input": text, "tools": RESPONSES_TOOLS})
        events = list(exchange.events())
        assert [event["sequence_number"] for event in events] == list(range(len(events)))
        assert events[0]["type"] == "response.created"
        assert events[0]["response"]["status"] == "in_progress"
        assert events[-1] == {
            "type": "response.completed",
            "sequence_number": len(events) - 1,
            "response": exchange.response,
        }
        done = [event["item"] for event in events if event["type"] == "response.output_item.done"]
        assert done == exchange.response["output"]
        deltas = "".join(
            event["delta"]
            for event in events
            if event["type"] in ("response.output_text.delta", "response.function_call_arguments.delta")
        )
        item = exchange.response["output"][0]
        assert deltas.startswith(item["arguments"] if item["type"] == "function_call" else item["content"][0]["text"])


def test_reasoning_items_are_skipped_and_store_false_is_reported() -> None:
    exchange = responses(
        {"input": [{"type": "reasoning", "summary": []}, {"role": "user", "content": "hi"}], "store": False}
    )
    assert exchange.store is False
    assert exchange.response["output"][0]["type"] == "message"
