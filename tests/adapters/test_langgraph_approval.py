"""A LangGraph run pauses for a person's yes before a dangerous call is minted, and resumes with it — real
``langgraph`` (``StateGraph``, ``ToolNode``, ``interrupt``, ``Command(resume=...)``, an in-memory checkpointer).

The model node is scripted (it asks for one ``write_note`` call) so what is tested is the graph and the guard:
the interrupt carries the tool, the exact arguments and scope and the digest; nothing is minted while the graph
waits; a resume with an approval for that call runs it with one credential; a refusal, an approval for another
call (the tool call's arguments edited while the graph waited) and an approval used a second time are denied,
with nothing minted.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command
from support import MINTING, audit

from agentwrit_tools import AsyncBroker, Broker, Policy, ScopedTool, Task, scoped_tool
from agentwrit_tools.adapters.langchain import InterruptApprover, approval_for, as_langchain_tools

NOTE = {"patient_id": "P-1042", "text": "discharge tomorrow"}
_threads = itertools.count()


class Written:
    """What the tool body actually did (it must never run without an approval)."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, note: dict[str, Any]) -> None:
        with self._lock:
            self.notes.append(note)


def note_tool(written: Written) -> ScopedTool:
    @scoped_tool("write:notes:{patient_id}", ttl=30, approval=True)
    def write_note(patient_id: str, text: str, credential: Any) -> str:
        """Write a note into a patient's chart."""
        written.add({"patient_id": patient_id, "text": text, "scope": credential.scope})
        return f"note written for {patient_id}"

    return write_note


def graph_for(task: Task, written: Written) -> CompiledStateGraph[Any, Any, Any, Any]:
    tools = as_langchain_tools(task, [note_tool(written)])

    def plan(state: MessagesState) -> dict[str, Any]:
        if any(isinstance(m, ToolMessage) for m in state["messages"]):
            return {"messages": [AIMessage("done")]}
        call = {"name": "write_note", "args": dict(NOTE), "id": "call-note-1", "type": "tool_call"}
        return {"messages": [AIMessage("", id="plan-1", tool_calls=[call])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", plan)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=InMemorySaver())


@pytest.fixture
def task(client: Broker, task_id: str) -> Iterator[Task]:
    policy = Policy().with_approval(InterruptApprover())
    with Task(client, orch_id="medassist", task_id=task_id, ceiling=["write:notes:P-1042"], policy=policy) as t:
        yield t


def _config() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"thread-{next(_threads)}"}}


def _paused(state: dict[str, Any]) -> dict[str, Any]:
    [pending] = state["__interrupt__"]
    payload: dict[str, Any] = pending.value
    return payload


def _tool_message(state: dict[str, Any]) -> ToolMessage:
    [message] = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    return message


def _types(task: Task) -> list[str]:
    return [e.type for e in task.events]


def test_the_graph_pauses_before_anything_is_minted_and_resumes_with_the_approval(
    task: Task, operator: Broker, task_id: str
) -> None:
    written = Written()
    graph, config = graph_for(task, written), _config()
    payload = _paused(graph.invoke({"messages": [HumanMessage("note it")]}, config))
    assert payload["kind"] == "agentwrit_approval"
    assert (payload["tool"], payload["arguments"], payload["scope"]) == ("write_note", NOTE, ["write:notes:P-1042"])
    assert len(payload["digest"]) == 64
    assert written.notes == []
    assert "minted" not in _types(task)
    assert audit(operator, task_id, *MINTING) == []

    state = graph.invoke(Command(resume=approval_for(payload, by="dr-house")), config)
    message = _tool_message(state)
    assert message.status == "success"
    assert message.content == "note written for P-1042"
    assert written.notes == [{**NOTE, "scope": ("write:notes:P-1042",)}]
    types = _types(task)
    assert types.count("approval_requested") == 2  # asked on the first run, answered on the resumed one
    assert types.count("approval_granted") == 1
    assert types.count("minted") == 1
    assert types.index("approval_granted") < types.index("minted")
    granted = audit(operator, task_id, "approval_granted")
    assert len(granted) == 1
    assert "approver dr-house" in granted[0].detail
    assert granted[0].resource == payload["digest"]
    assert task.live_credentials == 0


def test_a_refusal_resumes_the_graph_with_a_denial_and_nothing_minted(
    task: Task, operator: Broker, task_id: str
) -> None:
    written = Written()
    graph, config = graph_for(task, written), _config()
    payload = _paused(graph.invoke({"messages": [HumanMessage("note it")]}, config))
    state = graph.invoke(Command(resume=approval_for(payload, by="dr-house", approved=False)), config)
    message = _tool_message(state)
    assert message.status == "error"
    assert "the approver said no" in str(message.content)
    assert written.notes == []
    assert audit(operator, task_id, *MINTING) == []
    [refused] = audit(operator, task_id, "approval_refused")
    assert "refused (denied)" in refused.detail


def test_arguments_edited_while_the_graph_waited_void_the_approval(task: Task, operator: Broker, task_id: str) -> None:
    written = Written()
    graph, config = graph_for(task, written), _config()
    payload = _paused(graph.invoke({"messages": [HumanMessage("note it")]}, config))
    # While the person reads the payload, the pending tool call is edited (another note, same patient).
    edited = {"name": "write_note", "args": {**NOTE, "text": "stop all medication"}, "id": "call-note-1"}
    graph.update_state(config, {"messages": [AIMessage("", id="plan-1", tool_calls=[edited])]}, as_node="agent")
    state = graph.invoke(Command(resume=approval_for(payload, by="dr-house")), config)
    message = _tool_message(state)
    assert message.status == "error"
    assert "approval given was for another call" in str(message.content)
    assert written.notes == []
    assert audit(operator, task_id, *MINTING) == []
    refused = [e for e in task.events if e.type == "approval_refused"]
    assert [getattr(e, "reason", "") for e in refused] == ["arguments_changed"]


def test_an_approval_cannot_be_used_twice(task: Task, operator: Broker, task_id: str) -> None:
    written = Written()
    graph = graph_for(task, written)
    first = _config()
    approval = approval_for(_paused(graph.invoke({"messages": [HumanMessage("note it")]}, first)), by="dr-house")
    assert _tool_message(graph.invoke(Command(resume=approval), first)).status == "success"
    # The same call again (another thread of the graph, same task): the old approval is replayed.
    second = _config()
    _paused(graph.invoke({"messages": [HumanMessage("note it again")]}, second))
    message = _tool_message(graph.invoke(Command(resume=approval), second))
    assert message.status == "error"
    assert "already used" in str(message.content)
    assert len(written.notes) == 1
    assert len(audit(operator, task_id, "token_issued")) == 1


def test_a_bare_true_is_not_an_approval(task: Task, operator: Broker, task_id: str) -> None:
    written = Written()
    graph, config = graph_for(task, written), _config()
    _paused(graph.invoke({"messages": [HumanMessage("note it")]}, config))
    message = _tool_message(graph.invoke(Command(resume=True), config))
    assert message.status == "error"
    assert written.notes == []
    assert audit(operator, task_id, *MINTING) == []


@pytest.mark.anyio
async def test_an_async_graph_pauses_and_resumes_too(aclient: AsyncBroker, operator: Broker, task_id: str) -> None:
    written = Written()
    policy = Policy().with_approval(InterruptApprover())
    async with Task(aclient, orch_id="medassist", task_id=task_id, ceiling="write:notes:P-1042", policy=policy) as t:
        graph, config = graph_for(t, written), _config()
        payload = _paused(await graph.ainvoke({"messages": [HumanMessage("note it")]}, config))
        assert written.notes == []
        state = await graph.ainvoke(Command(resume=approval_for(payload, by="dr-house")), config)
        assert _tool_message(state).status == "success"
    assert len(written.notes) == 1
    assert len(audit(operator, task_id, "token_issued")) == 1
