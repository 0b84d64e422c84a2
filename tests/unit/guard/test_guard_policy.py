"""Policies and model-visible messages: what the model sees never carries a token, and raising is opt-in."""

from __future__ import annotations

from typing import Any

import pytest
from guard_fakes import TOKEN_PREFIX, FakeCredential, context

from agentwrit_tools import AccessDenied, Credential, InvalidToolArguments, Policy, ToolError, scoped_tool
from agentwrit_tools.guard._effects import MintOutcome, ReleaseOutcome, RunOutcome
from agentwrit_tools.guard._flow import call_flow
from agentwrit_tools.guard._result import ToolResult, to_content

TOKEN = TOKEN_PREFIX + "c2lnbmF0dXJlLWJ5dGVzLW9mLWEtcmVhbC1sb29raW5nLXRva2Vu"


@scoped_tool("read:records:{patient_id}")
def read_record(patient_id: str, credential: Credential) -> str:
    return patient_id


def run_with_error(error: BaseException, policy: Policy) -> ToolResult:
    flow = call_flow(context(policy=policy), read_record, {"patient_id": "p-1"}, "c-1")
    mint = next(flow)
    flow.send(MintOutcome(FakeCredential(mint.scopes), None, 1.0, 1.1))
    flow.send(RunOutcome("error", None, error, 1.2, 1.3))
    with pytest.raises(StopIteration) as stop:
        flow.send(ReleaseOutcome(True, None, 1.4))
    result: ToolResult = stop.value.value
    return result


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"Authorization: Bearer {TOKEN}"),
        ValueError(TOKEN),
        KeyError({"token": TOKEN}),
        OSError(TOKEN.split(".")[2]),
    ],
)
def test_a_tool_error_never_shows_its_text(error: Exception) -> None:
    result = run_with_error(error, Policy.tell_model())
    assert result.content == f"read_record failed ({type(error).__name__})"
    assert result.exception is error  # kept for the developer, not for the model


def test_tool_error_messages_are_sent_on_purpose_but_redacted() -> None:
    result = run_with_error(ToolError("patient p-1 is not in your ward"), Policy.tell_model())
    assert result.content == "read_record failed: patient p-1 is not in your ward"
    leaky = run_with_error(ToolError(f"locked by {TOKEN}"), Policy.tell_model())
    assert TOKEN not in leaky.content
    assert TOKEN.split(".")[2] not in leaky.content
    assert "[redacted]" in leaky.content


def test_describe_error_hook_is_explicit_redacted_and_fault_tolerant() -> None:
    def describe(tool: str, exc: BaseException) -> str:
        return f"{tool}: lookup failed, token was {TOKEN}"

    def broken(tool: str, exc: BaseException) -> str:
        raise RuntimeError("hook bug")

    result = run_with_error(LookupError("x"), Policy.tell_model(describe_error=describe))
    assert result.content == "read_record: lookup failed, token was [redacted]"
    fallback = run_with_error(LookupError("x"), Policy.tell_model(describe_error=broken))
    assert fallback.content == "read_record failed (LookupError)"


def test_named_policies_decide_what_raises() -> None:
    denial = ToolResult(
        "t",
        "c",
        False,
        True,
        "outside_ceiling",
        "m",
        "m",
        exception=AccessDenied("m", tool="t", call_id="c", reason="outside_ceiling"),
    )
    invalid = ToolResult(
        "t",
        "c",
        False,
        False,
        "invalid_arguments",
        "m",
        "m",
        exception=InvalidToolArguments("m", tool="t", call_id="c", problems=()),
    )
    error = ToolResult("t", "c", False, False, "tool_error", "m", "m", exception=ValueError())
    ok = ToolResult("t", "c", True, False, None, "", 1)
    cases: list[tuple[Policy, list[bool]]] = [
        (Policy.tell_model(), [False, False, False, False]),
        (Policy(), [False, False, False, False]),
        (Policy.raise_errors(), [False, False, True, False]),
        (Policy.raise_all(), [True, True, True, False]),
    ]
    for policy, expected in cases:
        assert [policy.wants_raise(r) for r in (denial, invalid, error, ok)] == expected


@pytest.mark.parametrize(
    ("output", "content"),
    [
        ("plain text", "plain text"),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        (None, "null"),
        (("x", {1}), '["x", [1]]'),
        (3.5, "3.5"),
    ],
)
def test_content_is_always_text(output: Any, content: str) -> None:
    assert to_content(output) == content
    assert ToolResult("t", "c", True, False, None, "", output).content == content


def test_content_of_models_dataclasses_and_oddities() -> None:
    import dataclasses

    from pydantic import BaseModel

    class Record(BaseModel):
        patient: str

    @dataclasses.dataclass
    class Row:
        n: int

    loop: list[Any] = []
    loop.append(loop)
    assert to_content(Record(patient="p-1")) == '{"patient":"p-1"}'
    assert to_content([Row(1)]) == '[{"n": 1}]'
    assert to_content(loop) == "[[...]]"
