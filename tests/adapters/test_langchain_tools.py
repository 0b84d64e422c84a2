"""The LangChain adapter's tools on their own: ``invoke``/``ainvoke`` of guarded tools and of wrapped LangChain
tools, against the real embedded broker."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest
from adapter_support import assert_all_dead, medical_tools
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool, ToolException, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field
from support import Recorder, assert_nothing_minted

from agentwrit_tools import AccessDenied, AsyncBroker, Broker, ConfigurationError, Policy, Task, current_credential
from agentwrit_tools.adapters.langchain import GuardedTool, as_langchain_tool, as_langchain_tools, wrap_langchain_tool
from agentwrit_tools.trace import Minted

CEILING = "read:records:P-1042"


def _call(name: str, call_id: str = "call-lc-1", **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def test_guarded_tool_has_the_guard_schema_and_binds_as_an_openai_tool(client: Broker, task_id: str) -> None:
    tools = medical_tools(Recorder())
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING, tools=tools) as task:
        guarded = as_langchain_tools(task)
    assert [t.name for t in guarded] == ["get_record", "get_labs", "get_allergies"]
    for lc_tool, scoped in zip(guarded, tools, strict=True):
        assert isinstance(lc_tool, BaseTool)
        assert lc_tool.args_schema == scoped.parameters
        function = convert_to_openai_tool(lc_tool)["function"]
        assert function["name"] == scoped.name
        assert function["description"] == scoped.description
        assert function["parameters"]["properties"] == scoped.parameters["properties"]
        assert "credential" not in function["parameters"]["properties"]


def test_invoke_runs_through_the_task_with_exactly_its_scope(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    [get_record, *_] = medical_tools(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        lc_tool = as_langchain_tool(get_record, task)
        text = lc_tool.invoke({"patient_id": "P-1042"})
        message = lc_tool.invoke(_call("get_record", patient_id="P-1042"))
    assert isinstance(text, str)
    assert "Ada Lovelace" in text
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call-lc-1"
    assert message.status == "success"
    assert recorder.scopes == [("read:records:P-1042",)] * 2
    minted = [e for e in task.events if isinstance(e, Minted)]
    assert minted[1].call_id == "call-lc-1"  # the model's id names the call in the trace
    assert_all_dead(operator, recorder, task)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["async-task", "sync-task"])
async def test_ainvoke_runs_through_either_kind_of_task(
    kind: str, client: Broker, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    [get_record, *_] = medical_tools(recorder)
    broker: Broker | AsyncBroker = aclient if kind == "async-task" else client
    task = Task(broker, orch_id="o", task_id=task_id, ceiling=CEILING)
    lc_tool = as_langchain_tool(get_record, task)
    message = await lc_tool.ainvoke(_call("get_record", "c-async", patient_id="P-1042"))
    denied = await lc_tool.ainvoke(_call("get_record", "c-denied", patient_id="P-2000"))
    await task.aclose() if kind == "async-task" else task.close()
    assert message.status == "success"
    assert "Ada Lovelace" in message.content
    assert denied.status == "error"
    assert denied.content == "access denied: needs read:records:P-2000, task holds read:records:P-1042"
    assert recorder.scopes == [("read:records:P-1042",)]
    assert_all_dead(operator, recorder, task)


def test_refusals_are_error_tool_messages_and_mint_nothing(client: Broker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    [get_record, *_] = medical_tools(recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        lc_tool = as_langchain_tool(get_record, task)
        other = lc_tool.invoke(_call("get_record", "c1", patient_id="P-2000"))
        wildcard = lc_tool.invoke(_call("get_record", "c2", patient_id="*"))
        smuggled = lc_tool.invoke(_call("get_record", "c3", patient_id="P-1042", credential="forged"))
        plain = lc_tool.invoke({"patient_id": "P-2000"})
        clash = lc_tool.invoke(_call("get_record", "c4", patient_id="P-1042", self="x"))
        aclash = asyncio.run(lc_tool.ainvoke(_call("get_record", "c5", patient_id="P-1042", self="x")))
    assert [m.status for m in (other, wildcard, smuggled, clash, aclash)] == ["error"] * 5
    assert other.content.startswith("access denied: needs read:records:P-2000")
    assert wildcard.content.startswith("access denied: argument 'patient_id'")
    assert smuggled.content.startswith("invalid arguments for get_record: credential")
    assert clash.content == aclash.content == "invalid arguments for get_record: self: Extra inputs are not permitted"
    assert plain == other.content  # without a tool-call id LangChain returns the text alone
    assert recorder.seen == []
    assert_nothing_minted(operator, task_id)


def test_a_raising_policy_propagates_through_invoke(client: Broker, operator: Broker, task_id: str) -> None:
    [get_record, *_] = medical_tools(Recorder())
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING, policy=Policy.raise_all()) as task:
        lc_tool = as_langchain_tool(get_record, task)
        with pytest.raises(AccessDenied):
            lc_tool.invoke(_call("get_record", patient_id="P-2000"))
    assert_nothing_minted(operator, task_id)


@pytest.mark.anyio
async def test_sync_invoke_on_an_async_task_says_to_use_ainvoke(aclient: AsyncBroker, task_id: str) -> None:
    [get_record, *_] = medical_tools(Recorder())
    async with Task(aclient, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        with pytest.raises(ConfigurationError, match="ainvoke"):
            as_langchain_tool(get_record, task).invoke({"patient_id": "P-1042"})


# -- wrapping existing LangChain tools -----------------------------------------------------------------------


def _seen_by(recorder: Recorder, name: str) -> str:
    credential = current_credential()
    recorder.saw(name, credential)
    return f"{name} read with {','.join(credential.scope)}"


def _decorated(recorder: Recorder) -> BaseTool:
    @tool
    def lookup_patient(patient_id: str, include_history: bool = False) -> str:
        """Look a patient up in the clinic's directory."""
        return _seen_by(recorder, "decorated") + (" +history" if include_history else "")

    return lookup_patient


def _structured(recorder: Recorder) -> BaseTool:
    def lookup(patient_id: str) -> str:
        return _seen_by(recorder, "structured-sync")

    async def alookup(patient_id: str) -> str:
        return _seen_by(recorder, "structured-async")

    return StructuredTool.from_function(
        func=lookup, coroutine=alookup, name="lookup_patient", description="Look a patient up."
    )


class _LookupArgs(BaseModel):
    patient_id: str = Field(description="the patient's id")


class _Subclassed(BaseTool):
    name: str = "lookup_patient"
    description: str = "Look a patient up."
    args_schema: type[BaseModel] = _LookupArgs
    recorder: Any = None

    def _run(self, patient_id: str) -> str:
        return _seen_by(self.recorder, "subclass")


WRAPPED = {
    "decorated": _decorated,
    "structured": _structured,
    "subclass": lambda recorder: _Subclassed(recorder=recorder),
}


@pytest.mark.parametrize("kind", list(WRAPPED))
def test_wrapped_langchain_tools_run_with_a_credential_scoped_to_their_arguments(
    kind: str, client: Broker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    original = WRAPPED[kind](recorder)
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        guarded = wrap_langchain_tool(original, task, scope="read:records:{patient_id}")
        ok = guarded.invoke(_call("lookup_patient", patient_id="P-1042"))
        denied = guarded.invoke(_call("lookup_patient", "c2", patient_id="P-2000"))
        missing = guarded.invoke(_call("lookup_patient", "c3"))
    assert isinstance(guarded, GuardedTool)
    assert guarded.name == "lookup_patient"
    assert guarded.description == original.description
    assert "patient_id" in convert_to_openai_tool(guarded)["function"]["parameters"]["properties"]
    assert ok.status == "success"
    assert ok.content.endswith("read with read:records:P-1042")
    assert denied.status == "error"
    assert denied.content.startswith("access denied: needs read:records:P-2000")
    assert missing.status == "error"
    assert missing.content.startswith("invalid arguments for lookup_patient")
    assert recorder.scopes == [("read:records:P-1042",)]
    assert_all_dead(operator, recorder, task)


@pytest.mark.anyio
async def test_wrapped_tools_use_their_coroutine_on_an_async_task(
    aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    async with Task(aclient, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        structured = wrap_langchain_tool(_structured(recorder), task, scope="read:records:{patient_id}")
        decorated = wrap_langchain_tool(_decorated(recorder), task, scope="read:records:{patient_id}")
        first = await structured.ainvoke({"patient_id": "P-1042"})
        second = await decorated.ainvoke({"patient_id": "P-1042", "include_history": True})
    assert first.startswith("structured-async read with")
    assert second == "decorated read with read:records:P-1042 +history"
    assert [seen.label for seen in recorder.seen] == ["structured-async", "decorated"]
    assert_all_dead(operator, recorder, task)


@pytest.mark.anyio
async def test_async_only_tools_need_an_async_task(client: Broker, aclient: AsyncBroker, task_id: str) -> None:
    @tool
    async def lookup_patient(patient_id: str) -> str:
        """Look a patient up."""
        return ",".join(current_credential().scope)

    with pytest.raises(ConfigurationError, match="AsyncBroker"):
        wrap_langchain_tool(lookup_patient, Task(client, orch_id="o", task_id=task_id, ceiling=CEILING), scope="x:y:z")
    async with Task(aclient, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        guarded = wrap_langchain_tool(lookup_patient, task, scope="read:records:{patient_id}")
        assert await guarded.ainvoke({"patient_id": "P-1042"}) == "read:records:P-1042"


def test_a_tool_exception_reaches_the_model_as_the_tools_own_words(client: Broker, task_id: str) -> None:
    @tool
    def lookup_patient(patient_id: str) -> str:
        """Look a patient up."""
        raise ToolException("the directory is closed for maintenance")

    @tool
    def crash(patient_id: str) -> str:
        """Crash."""
        raise RuntimeError("secret-ish detail that must not reach the model")

    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        told = wrap_langchain_tool(lookup_patient, task, scope="read:records:{patient_id}").invoke(
            _call("lookup_patient", patient_id="P-1042")
        )
        crashed = wrap_langchain_tool(crash, task, scope="read:records:{patient_id}").invoke(
            _call("crash", patient_id="P-1042")
        )
    assert told.status == "error"
    assert told.content == "lookup_patient failed: the directory is closed for maintenance"
    assert crashed.status == "error"
    assert crashed.content == "crash failed (RuntimeError)"
    assert task.live_credentials == 0


def test_tools_that_cannot_be_wrapped_are_refused_at_wrap_time(client: Broker, task_id: str) -> None:
    @tool
    def with_call_id(patient_id: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Needs the call id."""
        return tool_call_id

    schemaless = StructuredTool(
        name="raw",
        description="JSON-schema arguments",
        args_schema={"type": "object", "properties": {"patient_id": {"type": "string"}}},
        func=lambda **kw: "x",
    )
    task = Task(client, orch_id="o", task_id=task_id, ceiling=CEILING)
    with pytest.raises(ConfigurationError, match="injected arguments"):
        wrap_langchain_tool(with_call_id, task, scope="read:records:{patient_id}")
    with pytest.raises(ConfigurationError, match="pydantic model"):
        wrap_langchain_tool(schemaless, task, scope="read:records:{patient_id}")
    with pytest.raises(ConfigurationError, match="not an argument"):
        wrap_langchain_tool(_decorated(Recorder()), task, scope="read:records:{customer_id}")
    with pytest.raises(ConfigurationError, match="BaseTool"):
        wrap_langchain_tool(print, task, scope="read:records:{patient_id}")  # type: ignore[arg-type]
    guarded = wrap_langchain_tool(_decorated(Recorder()), task, scope="read:records:{patient_id}")
    with pytest.raises(ConfigurationError, match="already guarded"):
        wrap_langchain_tool(guarded, task, scope="read:records:{patient_id}")
    task.close()
