"""The adapters' public names, and a loop driven by a client that is not ``openai``'s (it reads dicts too)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from adapter_support import medical_tools
from support import Recorder

import agentwrit_tools.adapters.langchain as langchain_adapter
import agentwrit_tools.adapters.openai as openai_adapter
from agentwrit_tools import Broker, Task
from agentwrit_tools.adapters.openai import run_chat_loop

OPENAI_API = {
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
}
LANGCHAIN_API = {
    "GuardedTool",
    "InterruptApprover",
    "approval_for",
    "as_langchain_tool",
    "as_langchain_tools",
    "wrap_langchain_tool",
}


def test_public_names_are_exactly_the_documented_ones() -> None:
    assert set(openai_adapter.__all__) == OPENAI_API
    assert set(langchain_adapter.__all__) == LANGCHAIN_API
    for module in (openai_adapter, langchain_adapter):
        for name in module.__all__:
            assert getattr(module, name) is not None


class _ScriptedChat:
    """A client-shaped object answering from a list of plain dicts."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.requests: list[dict[str, Any]] = []
        self._replies = list(replies)
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"choices": [{"message": self._replies.pop(0)}]}


def test_a_refusal_is_the_loops_answer(client: Broker, task_id: str) -> None:
    scripted = _ScriptedChat([{"role": "assistant", "content": None, "refusal": "I cannot help with that."}])
    with Task(client, orch_id="o", task_id=task_id, ceiling="read:records:P-1") as task:
        result = run_chat_loop(
            scripted,  # type: ignore[arg-type]
            task,
            model="m",
            messages=[{"role": "user", "content": "x"}],
            tools=medical_tools(Recorder()),
            temperature=0,
        )
    assert result.finished
    assert result.output_text == "I cannot help with that."
    assert result.steps == 1
    assert scripted.requests[0]["temperature"] == 0
    assert [t["function"]["name"] for t in scripted.requests[0]["tools"]] == ["get_record", "get_labs", "get_allergies"]
