"""OpenAI Agents SDK adapter (``pip install 'agentwrit-tools[agents]'``): guarded tools as ``FunctionTool``s.

* :func:`as_function_tools` / :func:`as_function_tool` — a task's scoped tools for an ``Agent(tools=...)``; every
  invocation goes through the guard with its own credential (parallel calls: one each).
* :func:`wrap_function_tool` — a tool already written with ``@function_tool`` behind the guard, with a scope
  template over its arguments.
* :class:`DelegatedHandoffs` — agents whose handoffs carry a token delegated from the handing agent's, narrowing
  only (a :class:`~agentwrit_tools.pipeline.Relay` underneath).

::

    agent = Agent(name="clinic", instructions=..., tools=as_function_tools(task),
                  model=OpenAIChatCompletionsModel(model=name, openai_client=AsyncOpenAI(base_url=...)))
    result = await Runner.run(agent, question, run_config=RunConfig(tracing_disabled=True))

Denials reach the model as the tool's output (the SDK's way of telling a model a tool failed), unless the task's
:class:`~agentwrit_tools.Policy` raises.
"""

from __future__ import annotations

from ._handoffs import DelegatedHandoffs
from ._tools import as_function_tool, as_function_tools, wrap_function_tool

__all__ = ["DelegatedHandoffs", "as_function_tool", "as_function_tools", "wrap_function_tool"]
