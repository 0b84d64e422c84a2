"""``POST /v1/responses``: the Responses API over the same planner. No sockets here.

Input is a string or a list of items: messages, the assistant's earlier ``function_call`` items, and
``function_call_output`` items carrying results. Output is either ``function_call`` items or one ``message``
with ``output_text``. ``previous_response_id`` is honoured through a lookup the server provides, so clients
that let the API keep the conversation work as well as clients that resend it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, TypeAdapter

from ._conversation import AssistantTurn, Conversation, Entry, MadeCall, ToolOutput, UserMessage
from ._errors import InvalidRequest
from ._labels import CREATED, MODEL_ID
from ._planner import Decision, Planner, derive_id
from ._wire import body_digest, content_text, estimate_tokens, parse_request, parse_value, pieces, tool_offer

__all__ = ["History", "ResponsesExchange"]

History = Callable[[str], Sequence[dict[str, Any]] | None]
"""Looks up the conversation items (input and output) of an earlier response by id."""

_LENIENT = ConfigDict(extra="ignore")


class _MessageItem(BaseModel):
    model_config = _LENIENT
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[dict[str, Any]]


class _FunctionCallItem(BaseModel):
    model_config = _LENIENT
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str


class _FunctionCallOutputItem(BaseModel):
    model_config = _LENIENT
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[dict[str, Any]]


class _ReasoningItem(BaseModel):
    model_config = _LENIENT
    type: Literal["reasoning"]


def _item_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type", "message")
        return kind if isinstance(kind, str) else None
    return getattr(value, "type", None)


_Item = Annotated[
    Annotated[_MessageItem, Tag("message")]
    | Annotated[_FunctionCallItem, Tag("function_call")]
    | Annotated[_FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[_ReasoningItem, Tag("reasoning")],
    Discriminator(
        _item_kind,
        custom_error_type="unsupported_item",
        custom_error_message="unsupported input item type (the stand-in reads messages, function_call and "
        "function_call_output items)",
    ),
]
_ITEMS: TypeAdapter[list[_Item]] = TypeAdapter(list[_Item])


class _ResponsesRequest(BaseModel):
    model_config = _LENIENT
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    previous_response_id: str | None = None
    store: bool = True


def _conversation(items: Sequence[_Item]) -> Conversation:
    entries: list[Entry] = []
    turn: AssistantTurn | None = None
    called: set[str] = set()
    answered: set[str] = set()
    for item in items:
        if isinstance(item, _FunctionCallItem) or (isinstance(item, _MessageItem) and item.role == "assistant"):
            turn = turn or AssistantTurn()
            if isinstance(item, _FunctionCallItem):
                called.add(item.call_id)
                turn = AssistantTurn(turn.text, (*turn.calls, MadeCall(item.call_id, item.name, item.arguments)))
            else:
                turn = AssistantTurn(turn.text + content_text(item.content), turn.calls)
            continue
        if turn is not None:
            entries.append(turn)
            turn = None
        if isinstance(item, _FunctionCallOutputItem):
            if item.call_id not in called:
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id {item.call_id}.", param="input"
                )
            answered.add(item.call_id)
            output = item.output if isinstance(item.output, str) else content_text(item.output)
            entries.append(ToolOutput(item.call_id, output))
        elif isinstance(item, _MessageItem) and item.role == "user":
            entries.append(UserMessage(content_text(item.content)))
    if turn is not None:
        entries.append(turn)
    missing = sorted(called - answered)
    if missing:
        raise InvalidRequest(f"No tool output found for function call {missing[0]}.", param="input")
    return Conversation(tuple(entries))


def _function_names(tools: Sequence[dict[str, Any]]) -> list[str]:
    names = []
    for index, tool in enumerate(tools):
        if tool.get("type") == "function":
            name = tool.get("name")
            if not isinstance(name, str):
                param = f"tools[{index}].name"
                raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
            names.append(name)
    return names


@dataclass(frozen=True)
class ResponsesExchange:
    """One Responses request, decided.

    Attributes:
        decision: what the planner chose.
        response: the complete ``response`` object.
        items: the whole conversation after this response, for a later ``previous_response_id``.
        store: whether the client allowed keeping ``items``.
        stream: whether the client asked for server-sent events.
    """

    decision: Decision
    response: dict[str, Any]
    items: list[dict[str, Any]]
    store: bool
    stream: bool

    @classmethod
    def handle(cls, planner: Planner, body: dict[str, Any], history: History) -> ResponsesExchange:
        """Validate ``body`` and decide the turn; raises :class:`InvalidRequest` for what OpenAI would refuse."""
        request = parse_request(_ResponsesRequest, body)
        if isinstance(request.input, str):
            raw_new: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": request.input}]
        else:
            raw_new = [item.model_dump() for item in parse_value(_ITEMS, request.input, at="input")]
        earlier: list[dict[str, Any]] = []
        if request.previous_response_id is not None:
            found = history(request.previous_response_id)
            if found is None:
                raise InvalidRequest(
                    f"Previous response with id '{request.previous_response_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            earlier = list(found)
        items = _ITEMS.validate_python([*earlier, *raw_new])
        offer = tool_offer(_function_names(request.tools or []), request.tool_choice, request.parallel_tool_calls)
        decision = planner.decide(_conversation(items), offer)
        seed = derive_id("", decision.seed, body_digest(body))
        output = _output_items(decision, seed)
        prompt = estimate_tokens(json.dumps([*earlier, *raw_new], sort_keys=True) + json.dumps(request.tools))
        completion = estimate_tokens((decision.content or "") + "".join(c.name + c.arguments for c in decision.calls))
        response = {
            "id": "resp_" + seed,
            "object": "response",
            "created_at": CREATED,
            "status": "completed",
            "model": MODEL_ID,
            "output": output,
            "parallel_tool_calls": offer.parallel,
            "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
            "tools": request.tools or [],
            "instructions": request.instructions,
            "previous_response_id": request.previous_response_id,
            "store": request.store,
            "error": None,
            "incomplete_details": None,
            "metadata": {},
            "temperature": None,
            "top_p": None,
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + completion,
            },
        }
        return cls(decision, response, [*earlier, *raw_new, *output], request.store, request.stream)

    def events(self) -> Iterator[dict[str, Any]]:
        """The stream events of this response, in order, each with its ``sequence_number``."""
        return _events(self.response)


def _output_items(decision: Decision, seed: str) -> list[dict[str, Any]]:
    if decision.calls:
        return [
            {
                "type": "function_call",
                "id": derive_id("fc_", seed, index),
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
            for index, call in enumerate(decision.calls)
        ]
    text = {"type": "output_text", "text": decision.content or "", "annotations": [], "logprobs": []}
    message = {"type": "message", "id": derive_id("msg_", seed), "status": "completed", "role": "assistant"}
    return [{**message, "content": [text]}]


def _events(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sequence = 0

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        nonlocal sequence
        sequence += 1
        return {"type": kind, "sequence_number": sequence - 1, **fields}

    opening = {**response, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=opening)
    yield event("response.in_progress", response=opening)
    for index, item in enumerate(response["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "function_call":
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for piece in pieces(item["arguments"]):
                yield event("response.function_call_arguments.delta", **where, delta=piece)
            yield event(
                "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
            )
        else:
            part = item["content"][0]
            yield event(
                "response.output_item.added", output_index=index, item={**item, "content": [], "status": "in_progress"}
            )
            yield event("response.content_part.added", **where, content_index=0, part={**part, "text": ""})
            for piece in pieces(part["text"]):
                yield event("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
            yield event("response.output_text.done", **where, content_index=0, text=part["text"], logprobs=[])
            yield event("response.content_part.done", **where, content_index=0, part=part)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=response)
