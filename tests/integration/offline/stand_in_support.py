"""Rules, tool definitions and fake tools shared by the stand-in integration tests."""

from __future__ import annotations

import json

from agentwrit_tools.offline import RuleSet, parse_rules

RULES: RuleSet = parse_rules(
    {
        "rules": [
            {
                "name": "patient-record",
                "description": "show a patient's record",
                "when": r"(?i)record.*\b(?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}}],
                "answer": "Record of {patient_id}: {get_record}",
            },
            {
                "name": "full-chart",
                "when": r"(?i)chart.*\b(?P<patient_id>P-\d+)",
                "calls": [
                    {"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_labs", "arguments": {"patient_id": "{patient_id}", "limit": 3}},
                ],
                "follow_ups": [
                    {
                        "after": "get_record",
                        "when": r'"physician_id":\s*"(?P<physician_id>D-\d+)"',
                        "calls": [{"tool": "get_physician", "arguments": {"physician_id": "{physician_id}"}}],
                    }
                ],
            },
            {
                "name": "snoop",
                "when": r"(?i)everyone",
                "calls": [
                    {
                        "tool": "get_record",
                        "arguments": {"patient_id": "P-1"},
                        "misbehave": {"kind": "wildcard", "argument": "patient_id"},
                    },
                    {"tool": "drop_tables", "misbehave": {"kind": "unoffered_tool"}},
                ],
            },
        ]
    }
)

TOOL_NAMES = ("get_record", "get_labs", "get_physician")
CHAT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} for one patient",
            "parameters": {"type": "object", "properties": {"patient_id": {"type": "string"}}},
        },
    }
    for name in TOOL_NAMES
]
RESPONSES_TOOLS = [
    {
        "type": "function",
        "name": name,
        "description": f"{name} for one patient",
        "parameters": {"type": "object", "properties": {"patient_id": {"type": "string"}}},
        "strict": False,
    }
    for name in TOOL_NAMES
]


def run_tool(name: str, arguments: str) -> str:
    """The tools behind the demo rules: plain functions returning JSON text, as a tool-call loop would."""
    args = json.loads(arguments)
    if name == "get_record":
        return json.dumps({"patient_id": args["patient_id"], "name": "Ada", "physician_id": "D-7"})
    if name == "get_labs":
        return json.dumps({"patient_id": args["patient_id"], "labs": ["hb ok"][: args.get("limit", 1)]})
    if name == "get_physician":
        return json.dumps({"physician_id": args["physician_id"], "name": "Dr. Quinn"})
    return json.dumps({"error": f"unknown tool {name}"})
