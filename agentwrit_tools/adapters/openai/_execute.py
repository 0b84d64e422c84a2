"""Carrying out a response's tool calls through a task, one credential per call.

On the async path the calls of one turn run concurrently — a model that asks for three records in parallel gets
three credentials, each scoped to its own record, alive at the same time only while their own bodies run. A
task group (anyio, the guard's own concurrency layer, so this works on any backend the guard does) stands in
for ``asyncio.gather(..., return_exceptions=True)``: every call finishes — and releases its credential —
before the first exception, if a raising policy produced any, is re-raised. The sync path runs the calls one
after the other, in the model's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import anyio

from ...guard import ScopedTool, Task, ToolResult
from ._calls import ToolCall, tool_calls

__all__ = ["aexecute_tool_calls", "arun_calls", "execute_tool_calls", "run_calls"]


def _lookup(tools: Iterable[ScopedTool] | None) -> list[ScopedTool] | None:
    return None if tools is None else list(tools)


def run_calls(task: Task, calls: Sequence[ToolCall], tools: Iterable[ScopedTool] | None = None) -> list[ToolResult]:
    """Each call through :meth:`Task.call`, in order; results in the same order."""
    known = _lookup(tools)
    return [task.call(call.name, call.arguments, call_id=call.call_id, tools=known) for call in calls]


async def arun_calls(
    task: Task, calls: Sequence[ToolCall], tools: Iterable[ScopedTool] | None = None
) -> list[ToolResult]:
    """Every call through :meth:`Task.acall`, concurrently; results in the calls' order."""
    known = _lookup(tools)
    results: list[ToolResult | None] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    async def one(index: int, call: ToolCall) -> None:
        try:
            results[index] = await task.acall(call.name, call.arguments, call_id=call.call_id, tools=known)
        except Exception as exc:  # a raising policy: let the siblings finish and release first
            errors[index] = exc

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(one, index, call)
    for error in errors:
        if error is not None:
            raise error
    return [result for result in results if result is not None]


def execute_tool_calls(task: Task, response: Any, *, tools: Iterable[ScopedTool] | None = None) -> list[dict[str, Any]]:
    """Run the tool calls of ``response`` and return the messages that answer them.

    Args:
        task: the task the calls run under (made with a :class:`~agentwrit_tools.Broker`).
        response: a ``ChatCompletion``, its message, or a Responses ``Response`` (objects or dicts).
        tools: the tools the model was offered (default: the task's); any other name is an ``unknown_tool``
            denial, and nothing is minted for it.

    Returns:
        ``{"role": "tool", ...}`` messages for a chat completion, ``function_call_output`` items for a
        Responses response — one per call, in the model's order; refusals and failures are among them as
        messages for the model (unless the task's policy raises).
    """
    calls = tool_calls(response)
    return [call.reply(result.content) for call, result in zip(calls, run_calls(task, calls, tools), strict=True)]


async def aexecute_tool_calls(
    task: Task, response: Any, *, tools: Iterable[ScopedTool] | None = None
) -> list[dict[str, Any]]:
    """See :func:`execute_tool_calls`; the calls run concurrently (the task needs an AsyncBroker)."""
    calls = tool_calls(response)
    results = await arun_calls(task, calls, tools)
    return [call.reply(result.content) for call, result in zip(calls, results, strict=True)]
