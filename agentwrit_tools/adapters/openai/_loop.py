"""The tool-call loop: ask the model, run the tools it picks, send the results back, until it answers.

Written once, free of I/O, for both APIs and both I/O styles: :func:`_steps` is a generator that yields what it
needs done — a model request (:class:`_Ask`) or a batch of tool calls (:class:`_Run`) — and a sync or an async
driver does it. The two APIs differ only in the small :class:`_Api` table: which endpoint, where the history
goes (``messages`` or ``input``), what the model's turn adds to it, and where the final text is.

The loop resends the whole history every step rather than relying on ``previous_response_id``, so the same
code works with stateless endpoints (``store=False``, zero data retention, local servers) and the transcript it
returns is complete. ``max_steps`` bounds the model requests; the tool calls of the last allowed request are
still answered, so the transcript is always one the API would accept if you continue it yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ...errors import ConfigurationError
from ...guard import ScopedTool, Task, ToolResult
from ._calls import ToolCall, assistant_message, chat_message, output_items, output_text, tool_calls
from ._execute import arun_calls, run_calls
from ._schemas import chat_tool, responses_tool

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

__all__ = [
    "DEFAULT_MAX_STEPS",
    "LoopResult",
    "arun_chat_loop",
    "arun_responses_loop",
    "run_chat_loop",
    "run_responses_loop",
]

DEFAULT_MAX_STEPS = 8
"""Model requests a loop may make before it stops (a model that keeps calling tools is a bug or an attack)."""

_RESERVED = frozenset({"model", "messages", "input", "tools", "stream"})


@dataclass(frozen=True)
class LoopResult:
    """How a tool-call loop ended.

    Attributes:
        stop_reason: ``"done"`` — the model answered without calling tools; ``"max_steps"`` — it was still
            calling tools when the step limit was reached (its last calls were run and answered).
        output_text: the model's final answer (``None`` when stopped by ``max_steps``).
        transcript: the whole conversation to continue from: chat ``messages``, or Responses ``input`` items.
        results: every guarded tool call, in order (denials and failures included).
        steps: model requests made.
        last_response: the last ``ChatCompletion`` or ``Response`` the model returned.
    """

    stop_reason: Literal["done", "max_steps"]
    output_text: str | None
    transcript: tuple[dict[str, Any], ...]
    results: tuple[ToolResult, ...]
    steps: int
    last_response: Any = field(repr=False)

    @property
    def finished(self) -> bool:
        """The model gave a final answer."""
        return self.stop_reason == "done"

    @property
    def denials(self) -> tuple[ToolResult, ...]:
        """The calls refused on grounds of authority (nothing was minted for them)."""
        return tuple(result for result in self.results if result.denied)


@dataclass(frozen=True)
class _Api:
    endpoint: Callable[[Any], Callable[..., Any]]
    history: Literal["messages", "input"]
    turn: Callable[[Any], list[dict[str, Any]]]
    text: Callable[[Any], str]
    schema: Callable[..., Mapping[str, Any]]


def _chat_text(response: Any) -> str:
    message = chat_message(response)
    for key in ("content", "refusal"):  # a refusal is the model's answer too
        if isinstance(message.get(key), str) and message[key]:
            return str(message[key])
    return ""


def _responses_text(response: Any) -> str:
    return output_text(output_items(response))


CHAT = _Api(
    lambda client: client.chat.completions.create, "messages", lambda r: [assistant_message(r)], _chat_text, chat_tool
)
RESPONSES = _Api(lambda client: client.responses.create, "input", output_items, _responses_text, responses_tool)


@dataclass(frozen=True)
class _Ask:
    api: _Api
    request: dict[str, Any]


@dataclass(frozen=True)
class _Run:
    calls: tuple[ToolCall, ...]


_Steps = Generator[_Ask | _Run, Any, LoopResult]


def _steps(api: _Api, history: list[dict[str, Any]], request: dict[str, Any], max_steps: int) -> _Steps:
    transcript = list(history)
    results: list[ToolResult] = []
    last: Any = None
    for step in range(1, max_steps + 1):
        last = yield _Ask(api, {**request, api.history: list(transcript)})
        turn = api.turn(last)
        transcript.extend(turn)
        calls = tool_calls(last)
        if not calls:
            return LoopResult("done", api.text(last), tuple(transcript), tuple(results), step, last)
        outcome: list[ToolResult] = yield _Run(tuple(calls))
        results.extend(outcome)
        transcript.extend(call.reply(result.content) for call, result in zip(calls, outcome, strict=True))
    return LoopResult("max_steps", None, tuple(transcript), tuple(results), max_steps, last)


def _prepare(
    api: _Api,
    task: Task,
    history: list[dict[str, Any]],
    *,
    model: str,
    tools: Iterable[ScopedTool] | None,
    max_steps: int,
    strict: bool,
    options: Mapping[str, Any],
) -> tuple[_Steps, list[ScopedTool]]:
    if not isinstance(task, Task):
        raise ConfigurationError(f"expected a Task, not {type(task).__name__}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigurationError("max_steps must be a positive whole number")
    reserved = sorted(_RESERVED.intersection(options))
    if reserved:
        raise ConfigurationError(f"the loop sets {', '.join(reserved)} itself (streaming is not supported)")
    offered = list(task.tools.values()) if tools is None else list(tools)
    if not offered:
        raise ConfigurationError("no tools to offer: pass tools=[...] or give the task tools=[...]")
    request = {**options, "model": model, "tools": [api.schema(tool, strict=strict) for tool in offered]}
    return _steps(api, history, request, max_steps), offered


def _drive(steps: _Steps, client: Any, task: Task, offered: Sequence[ScopedTool]) -> LoopResult:
    outcome: Any = None
    while True:
        try:
            effect = steps.send(outcome)
        except StopIteration as stop:
            result: LoopResult = stop.value
            return result
        if isinstance(effect, _Ask):
            outcome = effect.api.endpoint(client)(**effect.request)
        else:
            outcome = run_calls(task, effect.calls, offered)


async def _adrive(steps: _Steps, client: Any, task: Task, offered: Sequence[ScopedTool]) -> LoopResult:
    outcome: Any = None
    while True:
        try:
            effect = steps.send(outcome)
        except StopIteration as stop:
            result: LoopResult = stop.value
            return result
        if isinstance(effect, _Ask):
            outcome = await effect.api.endpoint(client)(**effect.request)
        else:
            outcome = await arun_calls(task, effect.calls, offered)


def _items(value: object, what: str) -> list[dict[str, Any]]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(f'{what} must be a list, e.g. [{{"role": "user", "content": "..."}}]')
    items = list(value)
    if not all(isinstance(item, Mapping) for item in items):
        raise ConfigurationError(f"{what} must be a list of dicts")
    return [dict(item) for item in items]


def _messages(messages: object) -> list[dict[str, Any]]:
    return _items(messages, "messages")


def _input(value: object) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return _items(value, "input")


def run_chat_loop(
    client: OpenAI,
    task: Task,
    *,
    model: str,
    messages: Iterable[Mapping[str, Any]],
    tools: Iterable[ScopedTool] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    strict: bool = False,
    **options: Any,
) -> LoopResult:
    """Chat completions ↔ guarded tools until the model answers.

    Args:
        client: an ``openai.OpenAI`` client (any OpenAI-compatible endpoint, or the stand-in).
        task: the task every call runs under (made with a :class:`~agentwrit_tools.Broker`).
        model: the model to ask.
        messages: the conversation so far (not modified; the result's ``transcript`` extends it).
        tools: the tools to offer (default: the task's); calls to anything else are ``unknown_tool`` denials.
        max_steps: model requests allowed before the loop stops with ``stop_reason="max_steps"``.
        strict: offer the tools with ``strict`` schemas (see :func:`chat_tool`).
        **options: passed to ``chat.completions.create`` (``temperature``, ``parallel_tool_calls``, …).

    Raises:
        ConfigurationError: no tools, a bad ``max_steps``, or an option the loop sets itself.
        openai.OpenAIError: the model request failed (nothing is retried here beyond the client's own retries).
    """
    steps, offered = _prepare(
        CHAT, task, _messages(messages), model=model, tools=tools, max_steps=max_steps, strict=strict, options=options
    )
    return _drive(steps, client, task, offered)


async def arun_chat_loop(
    client: AsyncOpenAI,
    task: Task,
    *,
    model: str,
    messages: Iterable[Mapping[str, Any]],
    tools: Iterable[ScopedTool] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    strict: bool = False,
    **options: Any,
) -> LoopResult:
    """See :func:`run_chat_loop`; needs an ``openai.AsyncOpenAI`` client and a task made with an AsyncBroker.
    The tool calls of one turn run concurrently, each with its own credential."""
    steps, offered = _prepare(
        CHAT, task, _messages(messages), model=model, tools=tools, max_steps=max_steps, strict=strict, options=options
    )
    return await _adrive(steps, client, task, offered)


def run_responses_loop(
    client: OpenAI,
    task: Task,
    *,
    model: str,
    input: str | Iterable[Mapping[str, Any]],
    tools: Iterable[ScopedTool] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    strict: bool = False,
    **options: Any,
) -> LoopResult:
    """Responses API ↔ guarded tools until the model answers (the whole input is resent each step).

    Args:
        input: the user's text, or input items so far.
        **options: passed to ``responses.create`` (``instructions``, ``store``, ``parallel_tool_calls``, …).

    See :func:`run_chat_loop` for the other arguments; the result's ``transcript`` holds input items.
    """
    steps, offered = _prepare(
        RESPONSES, task, _input(input), model=model, tools=tools, max_steps=max_steps, strict=strict, options=options
    )
    return _drive(steps, client, task, offered)


async def arun_responses_loop(
    client: AsyncOpenAI,
    task: Task,
    *,
    model: str,
    input: str | Iterable[Mapping[str, Any]],
    tools: Iterable[ScopedTool] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    strict: bool = False,
    **options: Any,
) -> LoopResult:
    """See :func:`run_responses_loop`; async, with the tool calls of one turn run concurrently."""
    steps, offered = _prepare(
        RESPONSES, task, _input(input), model=model, tools=tools, max_steps=max_steps, strict=strict, options=options
    )
    return await _adrive(steps, client, task, offered)
