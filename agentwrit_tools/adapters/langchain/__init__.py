"""LangChain adapter: guarded tools as native ``BaseTool``s — ``invoke``/``ainvoke``, ``bind_tools``, agents
and LangGraph's ``ToolNode`` all work unchanged.

* :func:`as_langchain_tool` / :func:`as_langchain_tools` — a :class:`~agentwrit_tools.ScopedTool` as a
  ``BaseTool`` bound to a :class:`~agentwrit_tools.Task`.
* :func:`wrap_langchain_tool` — an existing LangChain tool (``@tool``, ``StructuredTool``, ``BaseTool``) behind
  the guard, with a scope template over its arguments.
* :class:`InterruptApprover` / :func:`approval_for` — a LangGraph run pauses (``interrupt``) for a person's yes
  before a call that needs approval is minted, and resumes with an approval bound to the call they saw.

::

    tools = as_langchain_tools(task)              # the task's own tools
    model = ChatOpenAI(...).bind_tools(tools)
    graph_node = ToolNode(tools)                   # denials arrive as ToolMessage(status="error")

Denials and failures become ``ToolMessage`` content with ``status="error"`` (the agent keeps going), unless the
task's :class:`~agentwrit_tools.Policy` says to raise.
"""

from __future__ import annotations

from ._approval import InterruptApprover, approval_for
from ._tool import GuardedTool, as_langchain_tool, as_langchain_tools
from ._wrap import wrap_langchain_tool

__all__ = [
    "GuardedTool",
    "InterruptApprover",
    "approval_for",
    "as_langchain_tool",
    "as_langchain_tools",
    "wrap_langchain_tool",
]
