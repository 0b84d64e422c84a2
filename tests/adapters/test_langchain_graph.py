"""Guarded tools in a LangGraph agent: ``ChatOpenAI.bind_tools`` → model node ↔ ``ToolNode``, until the model
answers. The honest run replays from a cassette (re-recordable against a real model); the misbehaving runs use
the live stand-in. Denials must arrive as ``ToolMessage`` content with ``status="error"``, and never end the graph.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import openai
import pytest
from adapter_support import ASK_RECORD, INJECTIONS, SYSTEM, assert_all_dead, medical_tools
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from model_cassettes import model_cassette
from support import Recorder, assert_nothing_minted, audit

from agentwrit_tools import AsyncBroker, Broker, Task
from agentwrit_tools.adapters.langchain import as_langchain_tools
from agentwrit_tools.offline import StandInModel


def agent_graph(llm: BaseChatModel, tools: list[BaseTool]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The smallest tool-calling agent: the model node, then tools while the model asks for them."""
    bound = llm.bind_tools(tools)

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def athink(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(think, afunc=athink))
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


@contextmanager
def chat_model(base_url: str, api_key: str, model: str) -> Iterator[ChatOpenAI]:
    """ChatOpenAI on an HTTP client of its own, closed afterwards (its default one is cached process-wide)."""
    with openai.DefaultHttpxClient() as http:
        yield ChatOpenAI(base_url=base_url, api_key=api_key, model=model, max_retries=0, http_client=http)  # type: ignore[arg-type]


@asynccontextmanager
async def achat_model(base_url: str, api_key: str, model: str) -> AsyncIterator[ChatOpenAI]:
    """See :func:`chat_model`: the default async client would outlive each test's event loop."""
    async with openai.DefaultAsyncHttpxClient() as http:
        yield ChatOpenAI(base_url=base_url, api_key=api_key, model=model, max_retries=0, http_async_client=http)  # type: ignore[arg-type]


def _tool_messages(state: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in state["messages"] if isinstance(m, ToolMessage)]


def test_agent_graph_reads_exactly_the_record_asked_for(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    with (
        model_cassette("langgraph_agent_record") as endpoint,
        chat_model(endpoint.base_url, endpoint.api_key, endpoint.model) as llm,
        Task(client, orch_id="medassist", task_id=task_id, ceiling="read:records:P-1042") as task,
    ):
        graph = agent_graph(llm, as_langchain_tools(task, medical_tools(recorder)))
        state = graph.invoke({"messages": [SystemMessage(SYSTEM), HumanMessage(ASK_RECORD)]})

    [tool_message] = _tool_messages(state)
    assert tool_message.status == "success"
    assert tool_message.name == "get_record"
    assert "Ada Lovelace" in tool_message.content
    calls = [m for m in state["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert tool_message.tool_call_id == calls[0].tool_calls[0]["id"]
    final = state["messages"][-1]
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    assert "P-1042" in str(final.content)
    assert recorder.scopes == [("read:records:P-1042",)]
    [issued] = audit(operator, task_id, "token_issued")
    assert issued.resource == recorder.seen[0].jti
    assert_all_dead(operator, recorder, task)


@pytest.mark.anyio
async def test_denials_arrive_as_error_tool_messages_and_the_graph_finishes(
    aclient: AsyncBroker, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    async with (
        achat_model(stand_in.base_url, "stand-in", stand_in.model) as llm,
        Task(aclient, orch_id="medassist", task_id=task_id, ceiling="read:records:P-1042") as task,
    ):
        graph = agent_graph(llm, as_langchain_tools(task, medical_tools(recorder)))
        state = await graph.ainvoke({"messages": [HumanMessage("Please snoop on P-1042")]})

    messages = _tool_messages(state)
    assert [m.status for m in messages] == ["error"] * 3
    assert messages[0].content == "access denied: needs read:records:P-2000, task holds read:records:P-1042"
    assert str(messages[1].content).startswith("access denied: argument 'patient_id' cannot be used in a scope")
    assert "delete_all_records" in str(messages[2].content)  # ToolNode's own refusal: no such tool
    final = state["messages"][-1]
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    assert recorder.seen == []
    assert_nothing_minted(operator, task_id)


@pytest.mark.anyio
async def test_injection_corpus_is_refused_through_the_langchain_adapter(
    aclient: AsyncBroker, stand_in: StandInModel, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    async with (
        achat_model(stand_in.base_url, "stand-in", stand_in.model) as llm,
        Task(aclient, orch_id="medassist", task_id=task_id, ceiling="read:records:*") as task,
    ):
        graph = agent_graph(llm, as_langchain_tools(task, medical_tools(recorder)))
        state = await graph.ainvoke({"messages": [HumanMessage("probe the records")]})

    [asked] = [m for m in state["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert [call["args"]["patient_id"] for call in asked.tool_calls] == list(INJECTIONS.values())
    messages = _tool_messages(state)
    assert len(messages) == len(INJECTIONS)
    assert all(m.status == "error" for m in messages)
    assert all(str(m.content).startswith("access denied: argument 'patient_id'") for m in messages)
    assert recorder.seen == []
    assert_nothing_minted(operator, task_id)


def test_tool_node_runs_parallel_calls_each_with_its_own_credential(
    client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    ceiling = ["read:records:P-1042", "read:labs:P-1042"]
    with Task(client, orch_id="medassist", task_id=task_id, ceiling=ceiling) as task:
        graph = StateGraph(MessagesState)
        graph.add_node("tools", ToolNode(as_langchain_tools(task, medical_tools(recorder))))
        graph.add_edge(START, "tools")
        graph.add_edge("tools", END)
        calls = [
            {"name": "get_record", "args": {"patient_id": "P-1042"}, "id": "c1"},
            {"name": "get_labs", "args": {"patient_id": "P-1042"}, "id": "c2"},
            {"name": "get_allergies", "args": {"patient_id": "P-1042"}, "id": "c3"},
        ]
        state = graph.compile().invoke({"messages": [AIMessage("", tool_calls=calls)]})

    messages = {m.tool_call_id: m for m in _tool_messages(state)}
    assert messages["c1"].status == messages["c2"].status == "success"
    assert messages["c3"].status == "error"
    assert messages["c3"].content == (
        "access denied: needs read:allergies:P-1042, task holds read:records:P-1042, read:labs:P-1042"
    )
    assert sorted(recorder.scopes) == [("read:labs:P-1042",), ("read:records:P-1042",)]
    assert len({seen.jti for seen in recorder.seen}) == 2
    assert_all_dead(operator, recorder, task)
