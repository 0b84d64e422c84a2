"""Putting an existing LangChain tool behind the guard: ``@tool`` functions, ``StructuredTool``s, ``BaseTool``s.

The wrapped tool keeps its name, description and arguments; its arguments become the scope template's
placeholders (``wrap_langchain_tool(lookup, task, scope="read:records:{patient_id}")``). Underneath, it is a
:class:`~agentwrit_tools.ScopedTool` whose one parameter is the LangChain tool's own pydantic ``args_schema``, so
the guard validates with exactly the model LangChain would have used and renders the scope from the validated
values; only then, with the credential minted, does it run the original tool (``invoke``/``ainvoke``). The
original tool gets the credential from :func:`~agentwrit_tools.current_credential` — it has no parameter for it.

A ``ToolException`` from the original tool is a message its author meant for the model (LangChain's own
convention), so it is passed on as a :class:`~agentwrit_tools.ToolError` — redacted like any tool-error text;
any other exception reaches the model only as the guard's fixed sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel

from ...client import AsyncBroker
from ...errors import ConfigurationError, ToolError
from ...guard import ScopedTool, Task
from ._tool import GuardedTool

__all__ = ["wrap_langchain_tool"]


def _args_model(tool: BaseTool) -> type[BaseModel]:
    schema: Any = tool.args_schema if tool.args_schema is not None else tool.get_input_schema()
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise ConfigurationError(
            f"tool {tool.name!r}: only tools whose args_schema is a pydantic model can be wrapped (a JSON-schema "
            "dict gives the guard nothing to validate with); declare it with @tool or a pydantic args_schema"
        )
    offered = tool.tool_call_schema
    if isinstance(offered, type) and set(getattr(offered, "model_fields", {})) != set(schema.model_fields):
        raise ConfigurationError(
            f"tool {tool.name!r} has injected arguments (InjectedToolArg, InjectedToolCallId…), which cannot be "
            "wrapped: take what they carried from current_credential() or a closure instead"
        )
    return schema


def _as_input(arguments: BaseModel) -> dict[str, Any]:
    # What the model actually sent (validated), by the names the schema accepts; defaults are the tool's to apply.
    return arguments.model_dump(by_alias=True, exclude_unset=True)


def _tool_error(tool: BaseTool, exc: ToolException) -> ToolError:
    text = str(exc) or f"{tool.name} failed"
    return ToolError(text)


def _bodies(tool: BaseTool, model: type[BaseModel]) -> tuple[Callable[..., Any] | None, Callable[..., Any]]:
    def run(arguments: BaseModel) -> Any:
        try:
            return tool.invoke(_as_input(arguments))
        except ToolException as exc:
            raise _tool_error(tool, exc) from exc

    async def arun(arguments: BaseModel) -> Any:
        try:
            return await tool.ainvoke(_as_input(arguments))
        except ToolException as exc:
            raise _tool_error(tool, exc) from exc

    for body in (run, arun):
        body.__annotations__ = {"arguments": model, "return": Any}  # the guard reads the schema from here
    # A StructuredTool made from a coroutine alone cannot run synchronously.
    sync_capable = getattr(tool, "func", True) is not None or getattr(tool, "coroutine", None) is None
    return (run if sync_capable else None), arun


def wrap_langchain_tool(
    tool: BaseTool,
    task: Task,
    *,
    scope: str | Sequence[str],
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
) -> GuardedTool:
    """Put an existing LangChain tool behind the guard, bound to ``task``.

    Args:
        tool: a ``@tool`` function, a ``StructuredTool`` or a ``BaseTool`` subclass instance, with a pydantic
            ``args_schema`` (``@tool`` and ``StructuredTool.from_function`` make one).
        task: the task every call runs under.
        scope: the scope template(s); placeholders name the tool's arguments.
        ttl: the credential's lifetime limit in seconds.
        timeout: seconds the tool may run.
        name: the name the model calls it by (default: the tool's own; must be ``[A-Za-z0-9_-]{1,64}``).
        description: what the model is told (default: the tool's own description).

    Returns:
        A :class:`GuardedTool`; the original tool reads its credential from ``current_credential()``.

    Raises:
        ConfigurationError: not a ``BaseTool``, no pydantic ``args_schema``, injected arguments, an async-only
            tool bound to a sync task, or a scope template/name the guard refuses.
    """
    if not isinstance(tool, BaseTool):
        raise ConfigurationError(f"expected a LangChain BaseTool, not {type(tool).__name__}")
    if isinstance(tool, GuardedTool):
        raise ConfigurationError(f"tool {tool.name!r} is already guarded")
    if not isinstance(task, Task):
        raise ConfigurationError(f"expected a Task, not {type(task).__name__}")
    model = _args_model(tool)
    run, arun = _bodies(tool, model)
    if run is None and not isinstance(task.broker, AsyncBroker):
        raise ConfigurationError(
            f"tool {tool.name!r} can only run asynchronously: bind it to a task made with an AsyncBroker"
        )
    options: dict[str, Any] = {
        "scope": scope,
        "ttl": ttl,
        "timeout": timeout,
        "name": name or tool.name,
        "description": description if description is not None else tool.description,
    }
    ascoped = ScopedTool(arun, **options)
    scoped = ScopedTool(run, **options) if run is not None else ascoped
    return GuardedTool(
        name=scoped.name,
        description=scoped.description or scoped.name,
        args_schema=scoped.parameters,
        return_direct=tool.return_direct,
        task=task,
        scoped=scoped,
        ascoped=ascoped,
    )
