"""The OpenAI Agents SDK adapter with the real ``Runner``: every tool invocation goes through the guard with its
own credential, parallel calls each get theirs, every refusal class reaches the model as the tool's output, an
existing ``@function_tool`` can be guarded, and handoffs carry delegated tokens that only narrow."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from adapter_support import ASK_RECORD, assert_all_dead, medical_tools
from agents import Agent, UserError, function_tool
from agents_support import AGENT_RULES, run, sdk_model, tool_outputs
from openai import AsyncOpenAI
from support import MINTING, Recorder, assert_dead, audit

from agentwrit_tools import (
    AccessDenied,
    AsyncBroker,
    Broker,
    ConfigurationError,
    Policy,
    Task,
    current_credential,
    scoped_tool,
)
from agentwrit_tools.adapters.openai_agents import DelegatedHandoffs, as_function_tools, wrap_function_tool
from agentwrit_tools.offline import StandInModel
from agentwrit_tools.pipeline import DelegationRefused, Relay
from agentwrit_tools.trace import Denied, Minted, Rejected

pytestmark = pytest.mark.anyio

CEILING = ["read:records:P-1042", "read:labs:P-1042", "read:allergies:P-1042"]
DANGEROUS = "Tool 'delete_all_records' not found."


@pytest.fixture(scope="module")
def agents_stand_in() -> Iterator[StandInModel]:
    with StandInModel(AGENT_RULES) as model:
        yield model


@pytest.fixture
async def model_client(agents_stand_in: StandInModel) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=agents_stand_in.base_url, api_key="stand-in", max_retries=0) as client:
        yield client


def _agent(model_client: AsyncOpenAI, tools: list[Any], name: str = "clinic") -> Agent[Any]:
    return Agent(name=name, instructions="Use the tools.", tools=tools, model=sdk_model(model_client))


async def test_the_runner_calls_a_guarded_tool_with_a_credential_of_its_own(
    model_client: AsyncOpenAI, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling=CEILING, tools=medical_tools(recorder)) as task:
        result = await run(_agent(model_client, as_function_tools(task)), ASK_RECORD)
    assert "Ada Lovelace" in result.final_output
    seen = recorder.one("get_record")
    assert seen.scope == ("read:records:P-1042",)
    [minted] = [e for e in task.events if isinstance(e, Minted)]
    assert minted.call_id.startswith("call_")  # the model's own tool-call id
    assert_all_dead(operator, recorder, task)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_parallel_tool_calls_each_get_their_own_credential_at_the_same_time(
    model_client: AsyncOpenAI, aclient: AsyncBroker, client: Broker, operator: Broker, task_id: str, kind: str
) -> None:
    recorder = Recorder()
    barrier = threading.Barrier(3, timeout=10)  # the three bodies must be running at once to pass it
    tools = medical_tools(recorder, barrier)
    broker: Any = aclient if kind == "async" else client
    task = Task(broker, orch_id="clinic", task_id=task_id, ceiling=CEILING, tools=tools)
    try:
        result = await run(_agent(model_client, as_function_tools(task)), "Show me the chart of P-1042")
    finally:
        await (task.aclose() if kind == "async" else asyncio.to_thread(task.close))
    assert result.final_output.count("P-1042") >= 3
    assert sorted(recorder.scopes) == sorted((scope,) for scope in CEILING)
    assert len({seen.jti for seen in recorder.seen}) == 3
    assert_all_dead(operator, recorder, task)


async def test_each_refusal_class_reaches_the_model_as_the_tools_output(
    model_client: AsyncOpenAI, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    tools = medical_tools(recorder)

    @scoped_tool("read:records:{patient_id}", timeout=0.3)
    async def slow_record(patient_id: str) -> str:
        """Read a record, too slowly."""
        await asyncio.sleep(5)
        return "late"

    async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling=CEILING, tools=[*tools, slow_record]) as task:
        agent = _agent(model_client, as_function_tools(task))
        denied = tool_outputs(await run(agent, "snoop on P-1042"))
        assert audit(operator, task_id, *MINTING) == []  # denials mint nothing
        rejected = tool_outputs(await run(agent, "malformed request for P-1042"))
        task._checked_ceiling = ("read:records:*",)  # simulate a bug in the guard's own check: the broker refuses
        refused = tool_outputs(await run(agent, "Please show me the medical record of patient P-2000"))
        task._checked_ceiling = task.ceiling
        started = time.monotonic()
        timed_out = tool_outputs(await run(agent, "slowly read P-1042"))
        elapsed = time.monotonic() - started
    assert denied == [
        "access denied: needs read:records:P-2000, task holds " + ", ".join(CEILING),
        "access denied: argument 'patient_id' cannot be used in a scope: the value is not a plain identifier "
        "(allowed: ASCII letters, digits and _ . @ + -)",
        DANGEROUS,  # an unoffered tool: the SDK answers it itself, the guard never sees it
    ]
    assert rejected == [
        "invalid arguments for get_record: patient_id: Field required; patient: Extra inputs are not permitted"
    ]
    assert refused == ["access denied: the broker refused a credential for read:records:P-2000"]
    assert timed_out == ["slow_record timed out after 0.3 s"]
    assert elapsed < 4
    assert recorder.runs == 0
    kinds = [e.reason for e in task.events if isinstance(e, Denied)]
    assert kinds == ["outside_ceiling", "unsafe_argument", "broker_refused"]
    assert len([e for e in task.events if isinstance(e, Rejected)]) == 1
    assert task.live_credentials == 0


async def test_a_raising_policy_ends_the_run_with_the_guards_exception(
    model_client: AsyncOpenAI, aclient: AsyncBroker, task_id: str
) -> None:
    recorder = Recorder()
    async with Task(
        aclient,
        orch_id="clinic",
        task_id=task_id,
        ceiling=CEILING,
        tools=medical_tools(recorder),
        policy=Policy.raise_all(),
    ) as task:
        with pytest.raises(UserError) as ended:
            await run(_agent(model_client, as_function_tools(task)), "snoop on P-1042")
    cause = ended.value.__cause__
    assert isinstance(cause, AccessDenied)  # the SDK ends the run with its UserError, caused by the guard's
    assert cause.reason in ("outside_ceiling", "unsafe_argument")
    assert recorder.runs == 0


def _lookup_tool(ran: list[tuple[str, tuple[str, ...]]]) -> Any:
    @function_tool
    async def lookup(patient_id: str) -> str:
        """Look a patient up in the registry.

        Args:
            patient_id: the patient's id.
        """
        credential = current_credential()
        ran.append((patient_id, tuple(credential.claims.scope)))
        return f"{patient_id} is registered"

    return lookup


async def test_an_existing_function_tool_runs_only_behind_the_guard(
    model_client: AsyncOpenAI, aclient: AsyncBroker, operator: Broker, task_id: str
) -> None:
    ran: list[tuple[str, tuple[str, ...]]] = []
    original = _lookup_tool(ran)
    async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling=CEILING) as task:
        guarded = wrap_function_tool(original, task, scope="read:records:{patient_id}")
        assert guarded.name == "lookup"
        assert guarded.params_json_schema == original.params_json_schema
        agent = _agent(model_client, [guarded])
        allowed = tool_outputs(await run(agent, "look up P-1042"))
        refused = tool_outputs(await run(agent, "look up someone else than P-1042"))
    assert allowed == ["P-1042 is registered"]
    assert ran == [("P-1042", ("read:records:P-1042",))]  # the original ran once, with exactly that credential
    assert refused == ["access denied: needs read:records:P-2000, task holds " + ", ".join(CEILING)]
    assert len(audit(operator, task_id, "token_issued")) == 1
    assert len(audit(operator, task_id, "token_released")) == 1


async def test_wrapping_refuses_what_it_cannot_guard(aclient: AsyncBroker, client: Broker, task_id: str) -> None:
    original = _lookup_tool([])
    async with Task(aclient, orch_id="clinic", task_id=task_id, ceiling=CEILING) as task:
        guarded = wrap_function_tool(original, task, scope="read:records:{patient_id}")
        with pytest.raises(ConfigurationError, match="already guarded"):
            wrap_function_tool(guarded, task, scope="read:records:{patient_id}")
        with pytest.raises(ConfigurationError, match="not an argument"):
            wrap_function_tool(original, task, scope="read:records:{patient}")
        with pytest.raises(ConfigurationError, match="FunctionTool"):
            wrap_function_tool(lambda: None, task, scope="read:records:x")  # type: ignore[arg-type]
    with (
        Task(client, orch_id="clinic", task_id=task_id + "-s", ceiling=CEILING) as sync_task,
        pytest.raises(ConfigurationError, match="AsyncBroker"),
    ):
        wrap_function_tool(original, sync_task, scope="read:records:{patient_id}")


def _support_tools(recorder: Recorder) -> tuple[Any, Any]:
    @scoped_tool("read:tickets:{ticket}")
    def read_ticket(ticket: str) -> str:
        """Read a support ticket."""
        recorder.saw("read_ticket", current_credential())
        return f"ticket {ticket}: billing question"

    @scoped_tool("read:invoices:{invoice}")
    def get_invoice(invoice: str) -> str:
        """Read an invoice."""
        recorder.saw("get_invoice", current_credential())
        return f"invoice {invoice}: paid"

    return read_ticket, get_invoice


@pytest.fixture
def support_app(broker: Any) -> Any:
    import secrets

    return broker.create_app(f"agents-handoff-{secrets.token_hex(3)}", ["read:tickets:*", "read:invoices:*"])


async def test_a_handoff_carries_a_token_delegated_from_the_handing_agent(
    model_client: AsyncOpenAI, broker: Any, support_app: Any, operator: Broker, task_id: str
) -> None:
    recorder = Recorder(operator.validate)
    read_ticket, get_invoice = _support_tools(recorder)
    ceiling = ["read:tickets:T-1", "read:invoices:INV-7"]
    async with (
        AsyncBroker(broker.url, support_app.client_id, support_app.client_secret) as aclient,
        DelegatedHandoffs(Relay(aclient, orch_id="support", task_id=task_id, ceiling=ceiling)) as team,
    ):
        billing = team.agent(
            Agent(name="billing", instructions="b", model=sdk_model(model_client)),
            scope="read:invoices:INV-7",
            tools=[get_invoice],
        )
        triage = team.agent(
            Agent(name="triage", instructions="t", model=sdk_model(model_client)),
            scope=ceiling,
            tools=[read_ticket],
            handoffs=[billing],
        )
        result = await run(triage, "Show invoice INV-7 on ticket T-1")
        lineage = team.relay.lineage
    assert result.last_agent.name == "billing"
    ticket, invoice = recorder.one("read_ticket"), recorder.one("get_invoice")
    assert ticket.scope == ("read:tickets:T-1",)
    assert invoice.scope == ("read:invoices:INV-7",)
    # Triage's call is delegated from triage's token; billing's from billing's, itself delegated from triage's.
    assert len(ticket.chain) == 1
    assert len(invoice.chain) == 2
    assert invoice.chain[0] == ticket.chain[0]  # the same triage agent at the root
    assert invoice.chain == lineage
    assert invoice.validated.delegation_chain[1].scope == ("read:invoices:INV-7",)  # what billing held: narrower
    assert_dead(operator, recorder.seen)


async def test_a_handoff_to_a_wider_agent_is_refused_and_nothing_is_minted_for_it(
    model_client: AsyncOpenAI, broker: Any, support_app: Any, operator: Broker, task_id: str
) -> None:
    ceiling = ["read:tickets:T-1", "read:invoices:INV-7"]
    async with AsyncBroker(broker.url, support_app.client_id, support_app.client_secret) as aclient:
        relay = Relay(aclient, orch_id="support", task_id=task_id, ceiling=ceiling)
        async with DelegatedHandoffs(relay) as team:
            triage_base = Agent(name="triage", instructions="t", model=sdk_model(model_client))
            billing_base = Agent(name="billing", instructions="b", model=sdk_model(model_client))
            triage = team.agent(triage_base, scope=ceiling)
            billing = team.agent(billing_base, scope="read:invoices:INV-7", handoffs=[triage])
            entry = team.agent(triage_base, scope=ceiling, handoffs=[billing])
            with pytest.raises(DelegationRefused) as refused:
                await run(entry, "bounce ticket T-1")
            holder = relay.holder
    assert refused.value.missing == ("read:tickets:T-1",)
    assert holder == "billing"  # authority never went back up
    stages = [e for e in relay.trace.events.events if e.type == "stage_started"]
    assert [e.stage for e in stages] == ["triage", "billing"]
    assert [e.type for e in relay.trace.events.events if e.type == "handoff_refused"] == ["handoff_refused"]
    delegated = [e.detail for e in audit(operator, task_id, "delegation_created")]
    assert len(delegated) == 1
    assert delegated[0].endswith("delegated read:invoices:INV-7")


def test_the_adapter_exports_exactly_its_documented_names() -> None:
    import agentwrit_tools.adapters.openai_agents as adapter

    assert set(adapter.__all__) == {"DelegatedHandoffs", "as_function_tool", "as_function_tools", "wrap_function_tool"}
    assert all(getattr(adapter, name) is not None for name in adapter.__all__)
