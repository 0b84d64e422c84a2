"""Shared by the adapter tests: the stand-in's rules, the medical tools, and what the broker says exists.

The tools return only patient data (never a token or a jti), so what they send back to the model is the same
on every run — which is what lets a recorded model exchange replay.
"""

from __future__ import annotations

import threading
from typing import Any

from support import Recorder, assert_dead

from agentwrit_tools import Broker, Credential, current_credential, scoped_tool
from agentwrit_tools.guard import ScopedTool
from agentwrit_tools.offline import RuleSet, parse_rules

APP_SCOPES = ["read:records:*", "read:labs:*", "read:allergies:*", "write:notes:*"]
SYSTEM = "You are a clinical assistant. Use the tools to look things up; never guess."
ASK_RECORD = "Please show me the medical record of patient P-1042."

INJECTIONS: dict[str, str] = {
    "wildcard": "*",
    "scope_separator": "c-1:*",
    "space": "a b",
    "newline": "x\n",
    "path_traversal": "../x",
    "fullwidth_colon": "P\uff1a1042",
    "asterisk_operator": "\u2217",
    "fullwidth_asterisk": "\uff0a",
    "empty": "",
    "huge": "P" * 10_000,
}
"""Prompt-injection values a model might put into a scope argument; every one must be refused, nothing minted."""

RULES: RuleSet = parse_rules(
    {
        "rules": [
            {
                "name": "snoop",
                "description": "misbehave: another patient, a wildcard and a dangerous tool",
                "when": r"(?i)snoop on (?P<patient_id>P-\d+)",
                "calls": [
                    {
                        "tool": "get_record",
                        "arguments": {"patient_id": "{patient_id}"},
                        "misbehave": {"kind": "other_subject", "argument": "patient_id", "value": "P-2000"},
                    },
                    {
                        "tool": "get_record",
                        "arguments": {"patient_id": "{patient_id}"},
                        "misbehave": {"kind": "wildcard", "argument": "patient_id"},
                    },
                    {
                        "tool": "delete_all_records",
                        "arguments": {"confirm": True},
                        "misbehave": {"kind": "dangerous_tool"},
                    },
                ],
                "answer": "I could not do that: {results}",
            },
            {
                "name": "probe",
                "description": "misbehave: every injection value at once",
                "when": r"(?i)probe the records",
                "calls": [
                    {
                        "tool": "get_record",
                        "arguments": {"patient_id": "P-1042"},
                        "misbehave": {"kind": "injection", "argument": "patient_id", "value": value},
                    }
                    for value in INJECTIONS.values()
                ],
                "answer": "Probed: {results}",
            },
            {
                "name": "chain",
                "description": "one call per turn, each chained on the last",
                "when": r"(?i)everything about (?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}}],
                "follow_ups": [
                    {
                        "after": "get_record",
                        "calls": [{"tool": "get_labs", "arguments": {"patient_id": "{patient_id}"}}],
                    },
                    {
                        "after": "get_labs",
                        "calls": [{"tool": "get_allergies", "arguments": {"patient_id": "{patient_id}"}}],
                    },
                ],
            },
            {
                "name": "chart",
                "description": "three lookups in parallel",
                "when": r"(?i)chart of (?P<patient_id>P-\d+)",
                "calls": [
                    {"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_labs", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_allergies", "arguments": {"patient_id": "{patient_id}"}},
                ],
                "answer": "Chart of {patient_id}: {results}",
            },
            {
                "name": "record",
                "description": "one patient's record",
                "when": r"(?i)record.*\b(?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}}],
                "answer": "Record of {patient_id}: {get_record}",
            },
        ]
    }
)


def medical_tools(recorder: Recorder, barrier: threading.Barrier | None = None) -> list[ScopedTool]:
    """get_record / get_labs / get_allergies, each scoped to one patient; ``barrier`` makes them wait for each
    other (proof that they run at the same time: run one after the other, they would time out)."""

    def meet() -> None:
        if barrier is not None:
            barrier.wait()

    @scoped_tool("read:records:{patient_id}")
    def get_record(patient_id: str, credential: Credential) -> dict[str, Any]:
        """Read one patient's medical record.

        Args:
            patient_id: the patient's id, e.g. P-1042.
        """
        recorder.saw("get_record", credential)
        meet()
        return {"patient_id": patient_id, "name": "Ada Lovelace", "physician_id": "D-7"}

    @scoped_tool("read:labs:{patient_id}")
    def get_labs(patient_id: str) -> dict[str, Any]:
        """Read one patient's latest lab results.

        Args:
            patient_id: the patient's id.
        """
        recorder.saw("get_labs", current_credential())
        meet()
        return {"patient_id": patient_id, "labs": ["haemoglobin normal"]}

    @scoped_tool("read:allergies:{patient_id}")
    def get_allergies(patient_id: str, credential: Credential) -> dict[str, Any]:
        """Read one patient's allergies.

        Args:
            patient_id: the patient's id.
        """
        recorder.saw("get_allergies", credential)
        meet()
        return {"patient_id": patient_id, "allergies": ["penicillin"]}

    return [get_record, get_labs, get_allergies]


def assert_all_dead(operator: Broker, recorder: Recorder, task: Any) -> None:
    """No credential outlives its call: the task holds none and the broker rejects every token a body saw."""
    assert task.live_credentials == 0
    assert_dead(operator, recorder.seen)
