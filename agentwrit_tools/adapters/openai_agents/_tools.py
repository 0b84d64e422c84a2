"""Guarded tools as Agents SDK ``FunctionTool``s: every invocation goes through a task, with its own credential.

The SDK calls a function tool as ``on_invoke_tool(ctx, arguments_json)``. Here that is one
:meth:`~agentwrit_tools.Task.acall` (or :meth:`~agentwrit_tools.Task.call` in a worker thread, for a task made
with a sync :class:`~agentwrit_tools.Broker`), with the model's tool-call id as the guard's ``call_id``. The SDK
runs the tool calls of one model turn concurrently, so parallel calls each get their own credential.

What comes back is what the SDK expects of a tool: the output on success; on a denial or failure, the guard's
model-visible message *returned* as the tool's output (the SDK's convention for an error the model should see and
react to — raising would end the run). A :class:`~agentwrit_tools.Policy` that raises makes the guard's exception
propagate instead: the SDK ends the run with its ``UserError``, whose ``__cause__`` is the guard's exception.
A tool the model was not offered never reaches the guard: the SDK refuses it itself.

:func:`wrap_function_tool` guards a tool someone already wrote with ``@function_tool``: its JSON schema is what
the guard validates and the model sees, the scope renders from the validated arguments, and only then, with the
credential minted (reachable through :func:`~agentwrit_tools.current_credential`), does its own
``on_invoke_tool`` run — with the very arguments the scope was rendered from.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
from agents import FunctionTool
from agents.tool_context import ToolContext

from ...client import AsyncBroker
from ...errors import ConfigurationError
from ...guard import ScopedTool, Task, ToolResult
from ..openai._schemas import checked_parameters

__all__ = ["as_function_tool", "as_function_tools", "guarded_function_tool", "wrap_function_tool"]

TaskSource = Task | Callable[[], Awaitable[Task]]
"""A task, or a coroutine function giving the task a call runs under now (handoffs change it)."""

_SDK_CONTEXT: ContextVar[ToolContext[Any] | None] = ContextVar("agentwrit_tools_agents_context", default=None)
_GUARDED = "__agentwrit_guarded__"


async def _resolve(source: TaskSource) -> Task:
    return source if isinstance(source, Task) else await source()


async def _run(task: Task, tool: ScopedTool, arguments: str, call_id: str | None) -> ToolResult:
    if isinstance(task.broker, AsyncBroker):
        return await task.acall(tool, arguments, call_id=call_id)
    call = functools.partial(task.call, tool, arguments, call_id=call_id)
    return await anyio.to_thread.run_sync(call)  # a sync task's call blocks: keep it off the event loop


def guarded_function_tool(
    tool: ScopedTool, source: TaskSource, *, strict: bool = False, keep_output: bool = False
) -> FunctionTool:
    """The ``FunctionTool`` every adapter entry point builds: ``tool`` run through the task ``source`` gives.

    ``keep_output`` hands the SDK the tool's own return value (a wrapped SDK tool's output objects) rather than
    its text.
    """
    if not isinstance(tool, ScopedTool):
        raise ConfigurationError(f"expected a ScopedTool (use @scoped_tool), not {type(tool).__name__}")
    parameters = checked_parameters(tool, strict)

    async def invoke(ctx: ToolContext[Any], arguments: str) -> Any:
        task = await _resolve(source)
        marker = _SDK_CONTEXT.set(ctx)
        try:
            result = await _run(task, tool, arguments, getattr(ctx, "tool_call_id", None))
        finally:
            _SDK_CONTEXT.reset(marker)
        return result.output if result.ok and keep_output else result.content

    function_tool = FunctionTool(
        name=tool.name,
        description=tool.description or tool.name,
        params_json_schema=parameters,
        on_invoke_tool=invoke,
        strict_json_schema=strict,
    )
    setattr(function_tool, _GUARDED, True)
    return function_tool


def as_function_tool(tool: ScopedTool, task: Task, *, strict: bool = False) -> FunctionTool:
    """A scoped tool as an Agents SDK ``FunctionTool`` bound to ``task``.

    Args:
        tool: the guarded tool.
        task: the task every call runs under (a ``Broker`` or an ``AsyncBroker`` one).
        strict: offer the schema in strict mode (it must then list every argument as required and forbid others).

    Raises:
        ConfigurationError: not a ScopedTool or Task, or ``strict`` with a schema strict mode cannot take.
    """
    if not isinstance(task, Task):
        raise ConfigurationError(f"expected a Task, not {type(task).__name__}")
    return guarded_function_tool(tool, task, strict=strict)


def as_function_tools(
    task: Task, tools: Iterable[ScopedTool] | None = None, *, strict: bool = False
) -> list[FunctionTool]:
    """:func:`as_function_tool` for each tool (default: the task's own tools)."""
    chosen = list(task.tools.values()) if tools is None else list(tools)
    return [as_function_tool(tool, task, strict=strict) for tool in chosen]


def sdk_tool_as_scoped(
    tool: FunctionTool,
    *,
    scope: str | Sequence[str],
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
) -> ScopedTool:
    """An existing ``FunctionTool`` as a :class:`ScopedTool` over its own JSON schema (see the module docstring)."""
    if not isinstance(tool, FunctionTool):
        raise ConfigurationError(f"expected an Agents SDK FunctionTool (use @function_tool), not {type(tool).__name__}")
    if getattr(tool, _GUARDED, False):
        raise ConfigurationError(f"tool {tool.name!r} is already guarded")

    async def run_original(arguments: dict[str, Any]) -> Any:
        ctx = _SDK_CONTEXT.get()
        if ctx is None:  # only the guarded FunctionTool runs this body, and it always sets the context
            raise ConfigurationError(f"tool {tool.name!r} runs only through the Agents SDK")
        return await tool.on_invoke_tool(ctx, json.dumps(arguments))

    return ScopedTool.from_schema(
        run_original,
        tool.params_json_schema,
        name=name or tool.name,
        scope=scope,
        description=description if description is not None else tool.description,
        ttl=ttl,
        timeout=timeout,
    )


def wrap_function_tool(
    tool: FunctionTool,
    task: Task,
    *,
    scope: str | Sequence[str],
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool:
    """Put a tool written with ``@function_tool`` behind the guard, bound to ``task``.

    Args:
        tool: the ``FunctionTool``.
        task: the task every call runs under; it needs an ``AsyncBroker`` (the SDK's tools are coroutines).
        scope: the scope template(s); placeholders name the tool's arguments (required ones).
        ttl: the credential's lifetime limit in seconds.
        timeout: seconds the tool may run.
        name: the name the model calls it by (default: the tool's own).
        description: what the model is told (default: the tool's own).

    Raises:
        ConfigurationError: not a FunctionTool, already guarded, a sync task, or a template the guard refuses.
    """
    if not isinstance(task, Task):
        raise ConfigurationError(f"expected a Task, not {type(task).__name__}")
    if not isinstance(task.broker, AsyncBroker):
        raise ConfigurationError(
            f"tool {getattr(tool, 'name', tool)!r} is an Agents SDK tool (a coroutine): bind it to a task made "
            "with an AsyncBroker"
        )
    scoped = sdk_tool_as_scoped(tool, scope=scope, ttl=ttl, timeout=timeout, name=name, description=description)
    return guarded_function_tool(scoped, task, strict=tool.strict_json_schema, keep_output=True)
