"""Tool calls out of a model response, and the messages that carry their results back. No I/O.

Both OpenAI APIs are read here: a chat completion (or its message) lists ``tool_calls``; a Responses ``Response``
has ``function_call`` items in its ``output``. The ``openai`` client's objects and plain dicts of the same shape
(say, parsed from a raw HTTP body) are accepted alike — objects are dumped to dicts first, so there is one code
path and ``openai`` itself is never imported.

Every call the model made gets an answer, including calls to custom (free-form) tools, which the guard refuses
as unknown: both APIs reject a conversation in which a call went unanswered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import ConfigurationError

__all__ = ["ToolCall", "as_dict", "assistant_message", "chat_message", "output_items", "output_text", "tool_calls"]

ReplyKind = Literal["tool", "function_call_output", "custom_tool_call_output"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the model asked for.

    Attributes:
        call_id: the id its result must carry (``tool_call_id`` / ``call_id``).
        name: the tool's name, as the model gave it.
        arguments: the arguments as the model sent them (JSON text for function tools).
        reply_kind: the shape of the answer: a chat ``tool`` message, or a Responses output item.
    """

    call_id: str
    name: str
    arguments: str
    reply_kind: ReplyKind

    def reply(self, content: str) -> dict[str, Any]:
        """The message (chat) or input item (Responses) that gives the model ``content`` for this call."""
        if self.reply_kind == "tool":
            return {"role": "tool", "tool_call_id": self.call_id, "content": content}
        return {"type": self.reply_kind, "call_id": self.call_id, "output": content}


def as_dict(value: Any) -> dict[str, Any]:
    """A response object (pydantic, as the ``openai`` client returns) or mapping, as a plain JSON-ready dict."""
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump(mode="json", exclude_unset=True, exclude_none=True, by_alias=True)
        if isinstance(dumped, dict):
            return dumped
    raise ConfigurationError(f"expected an OpenAI response, message or dict, not {type(value).__name__}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _call_id(entry: Mapping[str, Any], key: str, where: str) -> str:
    call_id = entry.get(key)
    if not isinstance(call_id, str) or not call_id:
        raise ConfigurationError(f"{where} has no {key!r}: it cannot be answered")
    return call_id


def _chat_call(entry: Mapping[str, Any]) -> ToolCall:
    call_id = _call_id(entry, "id", "a chat tool call")
    if entry.get("type", "function") == "function":
        function = entry.get("function") or {}
        return ToolCall(call_id, _text(function.get("name")), _text(function.get("arguments")), "tool")
    custom = entry.get("custom") or {}
    name = custom.get("name") if isinstance(custom, Mapping) else None
    body = custom.get("input") if isinstance(custom, Mapping) else None
    return ToolCall(call_id, _text(name), _text(body), "tool")


def chat_message(response: Any) -> dict[str, Any]:
    """The assistant message of a chat completion (its first choice), or the message itself when given one."""
    data = as_dict(response)
    if "choices" in data:
        choices = data["choices"]
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise ConfigurationError("the chat completion has no choices")
        message = choices[0].get("message")
        if not isinstance(message, Mapping):
            raise ConfigurationError("the chat completion's first choice has no message")
        return dict(message)
    return data


def output_items(response: Any) -> list[dict[str, Any]]:
    """The ``output`` items of a Responses ``Response``, as dicts ready to be sent back as input."""
    output = as_dict(response).get("output")
    if not isinstance(output, list):
        raise ConfigurationError("expected a Responses API response with an 'output' list")
    return [dict(item) for item in output if isinstance(item, Mapping)]


def _responses_calls(items: list[dict[str, Any]]) -> list[ToolCall]:
    calls = []
    for item in items:
        kind = item.get("type")
        if kind == "function_call":
            call_id = _call_id(item, "call_id", "a function_call item")
            calls.append(
                ToolCall(call_id, _text(item.get("name")), _text(item.get("arguments")), "function_call_output")
            )
        elif kind == "custom_tool_call":
            call_id = _call_id(item, "call_id", "a custom_tool_call item")
            calls.append(
                ToolCall(call_id, _text(item.get("name")), _text(item.get("input")), "custom_tool_call_output")
            )
    return calls


def tool_calls(response: Any) -> list[ToolCall]:
    """The tool calls in a chat completion, a chat message or a Responses response, in the model's order.

    Raises:
        ConfigurationError: ``response`` is none of these, or a call has no id to answer.
    """
    data = as_dict(response)
    if "output" in data and "choices" not in data:
        return _responses_calls(output_items(data))
    message = chat_message(data)
    entries = message.get("tool_calls") or []
    if not isinstance(entries, list):
        raise ConfigurationError("'tool_calls' must be a list")
    return [_chat_call(entry) for entry in entries if isinstance(entry, Mapping)]


def assistant_message(response: Any) -> dict[str, Any]:
    """The assistant's turn as a chat message to append to ``messages`` (only the fields requests accept)."""
    message = chat_message(response)
    out: dict[str, Any] = {"role": "assistant"}
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if content is not None or not calls:
        out["content"] = content if content is not None else ""
    if calls:
        out["tool_calls"] = [
            {key: call[key] for key in ("id", "type", "function", "custom") if key in call}
            for call in calls
            if isinstance(call, Mapping)
        ]
    return out


def output_text(items: list[dict[str, Any]]) -> str:
    """The text of the assistant messages among Responses output items (like ``Response.output_text``)."""
    parts = []
    for item in items:
        if item.get("type", "message") != "message" or item.get("role", "assistant") != "assistant":
            continue
        content = item.get("content")
        if isinstance(content, str):
            parts.append(content)
            continue
        for part in content or ():
            if isinstance(part, Mapping) and part.get("type") == "output_text":
                parts.append(_text(part.get("text")))
    return "".join(parts)
