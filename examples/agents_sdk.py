"""The OpenAI Agents SDK with one credential per tool call.

Runs offline: the embedded broker, and the stand-in model (a rule-based program, not a language model) reached
through the SDK's own chat-completions model class. Set ``OPENAI_API_KEY`` (or ``LLM_BASE_URL``) to use a real
model instead.

    python examples/agents_sdk.py
"""

from __future__ import annotations

import asyncio
import contextlib

from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner
from openai import AsyncOpenAI

from agentwrit_tools import AsyncBroker, Task, scoped_tool
from agentwrit_tools.adapters.openai_agents import as_function_tools
from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.offline import StandInModel, model_settings_from_env, parse_rules

RULES = parse_rules(
    {
        "rules": [
            {
                "name": "snoop",
                "when": r"(?i)other patient",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "P-2000"}}],
            },
            {
                "name": "record",
                "when": r"(?i)record of (?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}}],
            },
        ]
    }
)


@scoped_tool("read:records:{patient_id}", ttl=30, timeout=5)
def get_record(patient_id: str) -> dict[str, str]:
    """Read one patient's record.

    Args:
        patient_id: the patient's id, e.g. P-1042.
    """
    return {"patient_id": patient_id, "name": "Ada Lovelace"}


async def main() -> None:
    settings = model_settings_from_env()
    with EmbeddedBroker() as broker, contextlib.ExitStack() as stack:
        if settings is None:
            settings = stack.enter_context(StandInModel(RULES)).settings
        app = broker.create_app("clinic", ["read:records:*"])
        async with (
            AsyncOpenAI(base_url=settings.base_url, api_key=settings.api_key) as client,
            AsyncBroker(broker.url, app.client_id, app.client_secret) as abroker,
            Task(
                abroker, orch_id="clinic", task_id="visit-77", ceiling="read:records:P-1042", tools=[get_record]
            ) as task,
        ):
            agent = Agent(
                name="clinic",
                instructions="Answer from the tools only.",
                tools=as_function_tools(task),
                model=OpenAIChatCompletionsModel(model=settings.model, openai_client=client),
            )
            off = RunConfig(tracing_disabled=True)  # the trace exporter would try the network
            for question in ("Show me the record of P-1042", "Now the other patient's record"):
                result = await Runner.run(agent, question, run_config=off)
                print(f"> {question}\n{result.final_output}\n")
        print(task.exposure().table())


if __name__ == "__main__":
    asyncio.run(main())
