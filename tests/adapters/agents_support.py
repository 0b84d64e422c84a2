"""Shared by the Agents SDK tests: the stand-in's extra rules, an SDK model pointed at it, and a run helper.

The real ``openai-agents`` ``Runner`` drives everything; the model is the stand-in, reached through the SDK's
own chat-completions model class and a real ``AsyncOpenAI`` client on loopback. Tracing is off for every run
(its exporter would try the network).
"""

from __future__ import annotations

from typing import Any

from adapter_support import RULES
from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner
from agents.items import ToolCallOutputItem
from openai import AsyncOpenAI

from agentwrit_tools.offline import RuleSet, parse_rules

EXTRA = parse_rules(
    {
        "rules": [
            {
                "name": "malformed",
                "when": r"(?i)malformed request for (?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient": "{patient_id}"}}],
            },
            {
                "name": "slowly",
                "when": r"(?i)slowly read (?P<patient_id>P-\d+)",
                "calls": [{"tool": "slow_record", "arguments": {"patient_id": "{patient_id}"}}],
            },
            {
                "name": "lookup-snoop",
                "when": r"(?i)look up someone else than (?P<patient_id>P-\d+)",
                "calls": [
                    {
                        "tool": "lookup",
                        "arguments": {"patient_id": "{patient_id}"},
                        "misbehave": {"kind": "other_subject", "argument": "patient_id", "value": "P-2000"},
                    }
                ],
            },
            {
                "name": "lookup",
                "when": r"(?i)look up (?P<patient_id>P-\d+)",
                "calls": [{"tool": "lookup", "arguments": {"patient_id": "{patient_id}"}}],
            },
            {
                "name": "invoice",
                "when": r"(?i)invoice (?P<invoice>INV-\d+) on ticket (?P<ticket>T-\d+)",
                "calls": [{"tool": "read_ticket", "arguments": {"ticket": "{ticket}"}}],
                "follow_ups": [
                    {"after": "read_ticket", "calls": [{"tool": "transfer_to_billing", "arguments": {}}]},
                    {
                        "after": "transfer_to_billing",
                        "calls": [{"tool": "get_invoice", "arguments": {"invoice": "{invoice}"}}],
                    },
                ],
            },
            {
                "name": "bounce",
                "when": r"(?i)bounce ticket (?P<ticket>T-\d+)",
                "calls": [{"tool": "transfer_to_billing", "arguments": {}}],
                "follow_ups": [
                    {"after": "transfer_to_billing", "calls": [{"tool": "transfer_to_triage", "arguments": {}}]}
                ],
            },
        ]
    }
)

AGENT_RULES = RuleSet(EXTRA.rules + RULES.rules)

OFF = RunConfig(tracing_disabled=True, tool_not_found_behavior="return_error_to_model")


def sdk_model(client: AsyncOpenAI) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="stand-in", openai_client=client)


async def run(agent: Agent[Any], text: str) -> Any:
    return await Runner.run(agent, text, run_config=OFF)


def tool_outputs(result: Any) -> list[str]:
    """What each tool call gave the model, in order."""
    return [str(item.output) for item in result.new_items if isinstance(item, ToolCallOutputItem)]
