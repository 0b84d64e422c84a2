"""OpenAI adapter: guarded tools for chat completions and the Responses API.

* :func:`chat_tools` / :func:`responses_tools` — tool definitions in each API's format (``credential`` is never
  in them).
* :func:`tool_calls` — the calls in a ``ChatCompletion``, its message, or a ``Response``.
* :func:`execute_tool_calls` / :func:`aexecute_tool_calls` — run them through a :class:`~agentwrit_tools.Task`,
  one credential per call (concurrently on the async path), and get the messages that answer them.
* :func:`run_chat_loop`, :func:`run_responses_loop` and their async twins — model ↔ tools until the model
  answers, bounded by ``max_steps``.

::

    with Task(broker, orch_id=..., task_id=..., ceiling="read:records:P-1042", tools=[read_record]) as task:
        result = run_chat_loop(client, task, model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
        print(result.output_text)

This module never imports ``openai`` at run time (it reads the client's objects as dicts), and the guard never
imports this module.
"""

from __future__ import annotations

from ._calls import ToolCall, tool_calls
from ._execute import aexecute_tool_calls, execute_tool_calls
from ._loop import (
    DEFAULT_MAX_STEPS,
    LoopResult,
    arun_chat_loop,
    arun_responses_loop,
    run_chat_loop,
    run_responses_loop,
)
from ._schemas import chat_tool, chat_tools, responses_tool, responses_tools

__all__ = [
    "DEFAULT_MAX_STEPS",
    "LoopResult",
    "ToolCall",
    "aexecute_tool_calls",
    "arun_chat_loop",
    "arun_responses_loop",
    "chat_tool",
    "chat_tools",
    "execute_tool_calls",
    "responses_tool",
    "responses_tools",
    "run_chat_loop",
    "run_responses_loop",
    "tool_calls",
]
