"""``POST /v1/chat/completions``: request in, completion (or stream of chunks) out. No sockets here.

The stand-in is as strict as the real API where strictness catches bugs in the code under test: a tool message
must answer a preceding tool call, and every tool call must be answered before the conversation goes on. A
tool-call loop that forgets a result fails here the way it would fail against OpenAI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._conversation import AssistantTurn, Conversation, Entry, MadeCall, ToolOutput, UserMessage
from ._errors import InvalidRequest
from ._labels import CREATED, MODEL_ID, SYSTEM_FINGERPRINT
from ._planner import Decision, Planner, derive_id
from ._wire import body_digest, content_text, estimate_tokens, parse_request, pieces, tool_offer

__all__ = ["ChatExchange", "chat_chunks", "chat_completion"]

_LENIENT = ConfigDict(extra="ignore")


class _Function(BaseModel):
    model_config = _LENIENT
    name: str
    arguments: str


class _ToolCall(BaseModel):
    model_config = _LENIENT
    id: str
    type: Literal["function"] = "function"
    function: _Function


class _Message(BaseModel):
    model_config = _LENIENT
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None


class _FunctionDef(BaseModel):
    model_config = _LENIENT
    name: str


class _Tool(BaseModel):
    model_config = _LENIENT
    type: str
    function: _FunctionDef | None = None


class _StreamOptions(BaseModel):
    model_config = _LENIENT
    include_usage: bool = False


class _ChatRequest(BaseModel):
    model_config = _LENIENT
    model: str
    messages: list[_Message] = Field(min_length=1)
    tools: list[_Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    n: int | None = None


def _unanswered(call_ids: list[str], param: str) -> InvalidRequest:
    return InvalidRequest(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(call_ids)}",
        param=param,
    )


def _conversation(messages: list[_Message]) -> Conversation:
    entries: list[Entry] = []
    unanswered: list[str] = []
    for index, message in enumerate(messages):
        if message.role == "tool":
            if message.tool_call_id is None:
                param = f"messages[{index}].tool_call_id"
                raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
            if message.tool_call_id not in unanswered:
                raise InvalidRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceding message "
                    "with 'tool_calls'.",
                    param=f"messages[{index}].role",
                )
            unanswered.remove(message.tool_call_id)
            entries.append(ToolOutput(message.tool_call_id, content_text(message.content)))
            continue
        if unanswered:
            raise _unanswered(unanswered, f"messages[{index}].role")
        if message.role == "user":
            entries.append(UserMessage(content_text(message.content)))
        elif message.role == "assistant":
            calls = tuple(MadeCall(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ())
            unanswered = [call.call_id for call in calls]
            entries.append(AssistantTurn(content_text(message.content), calls))
    if unanswered:
        raise _unanswered(unanswered, "messages")
    return Conversation(tuple(entries))


@dataclass(frozen=True)
class ChatExchange:
    """One chat-completions request, decided.

    Attributes:
        decision: what the planner chose.
        response_id: ``chatcmpl-…``, a hash of the request.
        stream: whether the client asked for server-sent events.
        include_usage: whether a stream should end with a usage chunk.
        usage: OpenAI's ``usage`` object (estimated).
    """

    decision: Decision
    response_id: str
    stream: bool
    include_usage: bool
    usage: dict[str, Any]

    @classmethod
    def handle(cls, planner: Planner, body: dict[str, Any]) -> ChatExchange:
        """Validate ``body`` and decide the turn; raises :class:`InvalidRequest` for what OpenAI would refuse."""
        request = parse_request(_ChatRequest, body)
        if request.n not in (None, 1):
            raise InvalidRequest("The stand-in model returns exactly one choice; 'n' must be 1.", param="n")
        names = []
        for index, tool in enumerate(request.tools or ()):
            if tool.type == "function":
                if tool.function is None:
                    raise InvalidRequest(
                        f"Missing required parameter: 'tools[{index}].function'.", param=f"tools[{index}].function"
                    )
                names.append(tool.function.name)
        offer = tool_offer(names, request.tool_choice, request.parallel_tool_calls)
        decision = planner.decide(_conversation(request.messages), offer)
        prompt = estimate_tokens(
            json.dumps(body.get("messages"), sort_keys=True) + json.dumps(body.get("tools"), sort_keys=True)
        )
        completion = estimate_tokens((decision.content or "") + "".join(c.name + c.arguments for c in decision.calls))
        return cls(
            decision=decision,
            response_id=derive_id("chatcmpl-", decision.seed, body_digest(body)),
            stream=request.stream,
            include_usage=request.stream_options is not None and request.stream_options.include_usage,
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
        )

    def envelope(self, kind: str) -> dict[str, Any]:
        """The fields every completion object and chunk shares (id, model, labels)."""
        return {
            "id": self.response_id,
            "object": kind,
            "created": CREATED,
            "model": MODEL_ID,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "service_tier": "default",
        }


def _tool_calls(decision: Decision) -> list[dict[str, Any]]:
    return [
        {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in decision.calls
    ]


def chat_completion(exchange: ChatExchange) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` body."""
    decision = exchange.decision
    message: dict[str, Any] = {"role": "assistant", "content": decision.content, "refusal": None, "annotations": []}
    if decision.calls:
        message["tool_calls"] = _tool_calls(decision)
    return {
        **exchange.envelope("chat.completion"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": decision.finish_reason}],
        "usage": exchange.usage,
    }


def chat_chunks(exchange: ChatExchange) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a stream, in order (the caller adds ``data: [DONE]``)."""
    decision = exchange.decision
    usage_field: dict[str, Any] = {"usage": None} if exchange.include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**exchange.envelope("chat.completion.chunk"), "choices": [choice], **usage_field}

    if decision.calls:
        yield chunk({"role": "assistant", "content": None, "refusal": None})
        for index, call in enumerate(decision.calls):
            head = {
                "index": index,
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            for piece in pieces(call.arguments):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    else:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in pieces(decision.content or ""):
            yield chunk({"content": piece})
    yield chunk({}, decision.finish_reason)
    if exchange.include_usage:
        yield {**exchange.envelope("chat.completion.chunk"), "choices": [], "usage": exchange.usage}
