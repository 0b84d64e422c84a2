"""``GuardedTool``: a LangChain ``BaseTool`` whose every run goes through a task, with its own credential.

The tool is bound to one :class:`~agentwrit_tools.Task` (the task carries the authenticated ceiling — never the
model). ``args_schema`` is the guard's JSON schema as a dict, so LangChain passes the model's arguments through
untouched and the guard validates them, once, exactly as on every other path; ``bind_tools`` sends that same
schema to the model.

Results map onto LangChain's own conventions: a successful call returns the result's text; a denial, an
invalid-arguments refusal or a failure raises ``ToolException`` with the model-visible message, which
``handle_tool_error=True`` turns into a ``ToolMessage`` with ``status="error"`` — so an agent or a LangGraph
``ToolNode`` hands the refusal to the model and keeps going. A :class:`~agentwrit_tools.Policy` that raises
makes the guard's own exception propagate instead (it is not a ``ToolException``).

The model's tool-call id becomes the guard's ``call_id`` (trace events and results then name the same call the
model made): :meth:`GuardedTool.run` notes it in a context variable that the shared body reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from langchain_core.runnables.config import run_in_executor
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict

from ...client import AsyncBroker
from ...errors import ConfigurationError
from ...guard import ScopedTool, Task, ToolResult

__all__ = ["GuardedTool", "as_langchain_tool", "as_langchain_tools"]

_CALL_ID: ContextVar[str | None] = ContextVar("agentwrit_tools_langchain_call_id", default=None)


def _is_async(task: Task) -> bool:
    return isinstance(task.broker, AsyncBroker)


def _content(result: ToolResult) -> str:
    if result.ok:
        return result.content
    raise ToolException(result.content)


class GuardedTool(BaseTool):
    """A :class:`ScopedTool` as a LangChain tool, bound to a task. Build it with :func:`as_langchain_tool`.

    ``invoke`` needs a task made with a :class:`~agentwrit_tools.Broker`; ``ainvoke`` works with either kind
    (with a sync task the call runs in a worker thread, as LangChain does for sync tools).

    Attributes:
        task: the task every call runs under.
        scoped: the guarded tool run on the sync path (and on the async path unless ``ascoped`` is set).
        ascoped: the guarded tool run by ``ainvoke`` on an async task, when it differs (a wrapped LangChain tool
            has a sync and an async way to run).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    task: Task
    scoped: ScopedTool
    ascoped: ScopedTool | None = None
    handle_tool_error: bool = True

    def run(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        token = _CALL_ID.set(kwargs.get("tool_call_id"))
        try:
            return super().run(tool_input, *args, **kwargs)
        finally:
            _CALL_ID.reset(token)

    async def arun(self, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        token = _CALL_ID.set(kwargs.get("tool_call_id"))
        try:
            return await super().arun(tool_input, *args, **kwargs)
        finally:
            _CALL_ID.reset(token)

    # '/' because a model may send an argument named 'self'; the guard refuses it, Python must not choke on it.
    def _run(self, /, **arguments: Any) -> str:
        return self._call(arguments)

    async def _arun(self, /, **arguments: Any) -> str:
        if not _is_async(self.task):  # a sync task: its call runs in a worker thread, as LangChain runs sync tools
            return await run_in_executor(None, self._call, arguments)
        tool = self.ascoped or self.scoped
        return _content(await self.task.acall(tool, arguments, call_id=_CALL_ID.get()))

    def _call(self, arguments: dict[str, Any]) -> str:
        if _is_async(self.task):
            raise ConfigurationError(
                f"tool {self.name!r} is bound to a task made with an AsyncBroker: use ainvoke (or a Broker task)"
            )
        return _content(self.task.call(self.scoped, arguments, call_id=_CALL_ID.get()))


def as_langchain_tool(tool: ScopedTool, task: Task, *, return_direct: bool = False) -> GuardedTool:
    """A scoped tool as a LangChain tool bound to ``task`` (usable with ``bind_tools``, agents, ``ToolNode``).

    Raises:
        ConfigurationError: ``tool`` is not a :class:`ScopedTool` or ``task`` not a :class:`Task`.
    """
    if not isinstance(tool, ScopedTool):
        raise ConfigurationError(f"expected a ScopedTool (use @scoped_tool), not {type(tool).__name__}")
    if not isinstance(task, Task):
        raise ConfigurationError(f"expected a Task, not {type(task).__name__}")
    return GuardedTool(
        name=tool.name,
        description=tool.description or tool.name,
        args_schema=tool.parameters,
        return_direct=return_direct,
        task=task,
        scoped=tool,
    )


def as_langchain_tools(task: Task, tools: Iterable[ScopedTool] | None = None) -> list[GuardedTool]:
    """:func:`as_langchain_tool` for each tool (default: the task's own tools)."""
    chosen = list(task.tools.values()) if tools is None else list(tools)
    return [as_langchain_tool(tool, task) for tool in chosen]
