"""The OpenAI adapter's formats, without sockets: tool definitions, reading tool calls, answering them."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from adapter_support import medical_tools
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from support import Recorder

from agentwrit_tools import ConfigurationError, Credential, scoped_tool
from agentwrit_tools.adapters.openai import (
    chat_tool,
    chat_tools,
    responses_tool,
    responses_tools,
    tool_calls,
)
from agentwrit_tools.adapters.openai._calls import assistant_message, output_text


@scoped_tool("read:records:{patient_id}")
def with_default(patient_id: str, credential: Credential, limit: int = 3) -> str:
    """Read some records."""
    return patient_id


def _names(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("properties", {}))


def test_chat_and_responses_schemas_carry_the_guard_schema_without_credential() -> None:
    tools = medical_tools(Recorder())
    chat = chat_tools(tools)
    responses = responses_tools(tools)
    assert [t["function"]["name"] for t in chat] == ["get_record", "get_labs", "get_allergies"]
    for entry, tool in zip(chat, tools, strict=True):
        assert entry["type"] == "function"
        assert set(entry) == {"type", "function"}
        assert entry["function"]["parameters"] == tool.parameters
        assert entry["function"]["description"] == tool.description
        assert "credential" not in _names(entry["function"]["parameters"])
        assert "strict" not in entry["function"]
    for entry, tool in zip(responses, tools, strict=True):
        assert set(entry) == {"type", "name", "description", "parameters", "strict"}
        assert entry["name"] == tool.name
        assert entry["strict"] is False
        assert "credential" not in _names(entry["parameters"])
    # get_record declares credential; get_labs does not: neither shows it
    assert _names(chat[0]["function"]["parameters"]) == {"patient_id"}


def test_strict_mode_is_offered_only_for_strict_compatible_schemas() -> None:
    [get_record, *_] = medical_tools(Recorder())
    assert chat_tool(get_record, strict=True)["function"]["strict"] is True
    assert responses_tool(get_record, strict=True)["strict"] is True
    with pytest.raises(ConfigurationError, match=r"optional properties \(limit\)"):
        chat_tool(with_default, strict=True)
    with pytest.raises(ConfigurationError, match="strict"):
        responses_tool(with_default, strict=True)
    assert "limit" in _names(chat_tool(with_default)["function"]["parameters"])
    with pytest.raises(ConfigurationError, match="ScopedTool"):
        chat_tool(print)  # type: ignore[arg-type]


CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_record", "arguments": '{"a":1}'}},
                    {"id": "c2", "type": "custom", "custom": {"name": "shell", "input": "rm -rf /"}},
                ],
            },
        }
    ],
}

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "m",
    "status": "completed",
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "get_record", "arguments": "{}"},
        {"type": "custom_tool_call", "id": "ct_1", "call_id": "c2", "name": "shell", "input": "ls"},
    ],
}


@pytest.mark.parametrize("as_object", [False, True], ids=["dict", "openai-object"])
def test_tool_calls_are_read_from_chat_completions_and_their_messages(as_object: bool) -> None:
    completion: Any = ChatCompletion.model_validate(CHAT) if as_object else CHAT
    calls = tool_calls(completion)
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("c1", "get_record", '{"a":1}'),
        ("c2", "shell", "rm -rf /"),
    ]
    message = completion.choices[0].message if as_object else CHAT["choices"][0]["message"]  # type: ignore[index]
    assert tool_calls(message) == calls
    assert calls[0].reply("ok") == {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    assert calls[1].reply("no") == {"role": "tool", "tool_call_id": "c2", "content": "no"}
    sent = assistant_message(completion)
    assert sent["role"] == "assistant"
    assert "content" not in sent
    assert [call["id"] for call in sent["tool_calls"]] == ["c1", "c2"]


@pytest.mark.parametrize("as_object", [False, True], ids=["dict", "openai-object"])
def test_tool_calls_are_read_from_responses_output_items(as_object: bool) -> None:
    response: Any = Response.model_validate(RESPONSE) if as_object else RESPONSE
    calls = tool_calls(response)
    assert [(c.call_id, c.name) for c in calls] == [("c1", "get_record"), ("c2", "shell")]
    assert calls[0].reply("ok") == {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    assert calls[1].reply("no") == {"type": "custom_tool_call_output", "call_id": "c2", "output": "no"}


def test_a_message_without_calls_has_none_and_its_text_is_kept() -> None:
    answer = {"role": "assistant", "content": "done"}
    assert tool_calls(answer) == []
    assert assistant_message({"choices": [{"message": answer}]}) == {"role": "assistant", "content": "done"}
    items = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}]
    assert output_text(items) == "hi"


def test_unreadable_responses_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="OpenAI response"):
        tool_calls(42)
    with pytest.raises(ConfigurationError, match="no choices"):
        tool_calls({"choices": []})
    with pytest.raises(ConfigurationError, match="cannot be answered"):
        tool_calls({"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "x"}}]})


def test_the_openai_adapter_imports_without_langchain_and_the_guard_without_openai() -> None:
    code = (
        "import sys, agentwrit_tools.guard\n"
        "assert 'openai' not in sys.modules\n"
        "import agentwrit_tools.adapters.openai\n"
        "assert 'langchain_core' not in sys.modules, 'langchain'\n"
        "assert 'openai' not in sys.modules, 'openai'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
