"""The I/O-free per-call flow, driven by hand: every decision, and which effects it does (not) yield."""

from __future__ import annotations

from typing import Any

import pytest
from guard_fakes import ORCH_ID, TASK_ID, FakeCredential, context
from hypothesis import given
from hypothesis import strategies as st

from agentwrit_tools import (
    AccessDenied,
    BrokerUnavailable,
    Credential,
    InvalidToolArguments,
    ScopeMismatch,
    ScopeViolation,
    TaskBudgetExhausted,
    ToolTimeout,
    scoped_tool,
)
from agentwrit_tools.client import Problem
from agentwrit_tools.guard._effects import Mint, MintOutcome, Release, ReleaseOutcome, Run, RunOutcome
from agentwrit_tools.guard._flow import CallContext, call_flow, unknown_tool
from agentwrit_tools.guard._result import ToolResult
from agentwrit_tools.scopes import SAFE_VALUE_PATTERN


@scoped_tool("read:records:{patient_id}", ttl=30, timeout=2)
def read_record(patient_id: str, credential: Credential) -> str:
    return patient_id


@scoped_tool("read:records:{patient_id}")
def no_credential(patient_id: str) -> str:
    return patient_id


def finish(flow: Any, value: Any = None) -> ToolResult:
    """Send ``value`` and expect the flow to end."""
    with pytest.raises(StopIteration) as stop:
        flow.send(value)
    result: ToolResult = stop.value.value
    return result


def types(ctx: CallContext) -> list[str]:
    return [e.type for e in ctx.trace.events]


def minted_and_ran(ctx: CallContext, arguments: Any, run: RunOutcome | None = None, tool: Any = read_record) -> Any:
    """Drive to the Run effect with a matching credential; return (flow, credential, run effect)."""
    flow = call_flow(ctx, tool, arguments, "c-1")
    mint = next(flow)
    assert isinstance(mint, Mint)
    credential = FakeCredential(mint.scopes)
    effect = flow.send(MintOutcome(credential, None, 1.0, 1.01))
    assert isinstance(effect, Run)
    return flow, credential, effect


# -- refusals: nothing is yielded at all --------------------------------------------------------------------------


def test_invalid_arguments_are_rejected_before_anything_is_yielded() -> None:
    ctx = context()
    result = finish(call_flow(ctx, read_record, {"patient_id": 7}, "c-1"))
    assert result.error_kind == "invalid_arguments"
    assert not result.denied
    assert result.message == "invalid arguments for read_record: patient_id: Input should be a valid string"
    assert isinstance(result.exception, InvalidToolArguments)
    assert types(ctx) == ["rejected"]


def test_outside_the_ceiling_is_denied_with_both_scope_lists() -> None:
    ctx = context(("read:records:p-1", "write:notes:p-1"))
    result = finish(call_flow(ctx, read_record, {"patient_id": "p-2"}, "c-1"))
    assert result.denied
    assert result.message == "access denied: needs read:records:p-2, task holds read:records:p-1, write:notes:p-1"
    assert result.scope == ("read:records:p-2",)
    assert isinstance(result.exception, AccessDenied)
    assert result.exception.missing == ("read:records:p-2",)
    [denied] = ctx.trace.events
    assert (denied.type, denied.scope, denied.call_id) == ("denied", ("read:records:p-2",), "c-1")


@pytest.mark.parametrize(
    "value", ["*", "c-1:*", "a b", "x\n", "../x", "p\uff1a1", "\u2217", "\uff0a", "", "a" * 10_000]
)
def test_injection_corpus_is_denied_without_a_mint(value: str) -> None:
    ctx = context(("read:records:*",))
    result = finish(call_flow(ctx, read_record, {"patient_id": value}, "c-1"))
    assert result.error_kind == "unsafe_argument"
    assert result.scope == ()
    assert len(result.message) < 300
    assert types(ctx) == ["denied"]


@given(st.text(max_size=200))
def test_any_model_value_is_either_exactly_rendered_or_denied_before_minting(value: str) -> None:
    import re

    ctx = context(("read:records:*",))
    flow = call_flow(ctx, no_credential, {"patient_id": value}, "c-1")
    effect: Any = next(flow, None)  # None: the flow ended (a refusal) without yielding anything
    if effect is None:
        assert types(ctx) == ["denied"]
        assert not re.fullmatch(SAFE_VALUE_PATTERN, value)
        return
    assert isinstance(effect, Mint)
    assert re.fullmatch(SAFE_VALUE_PATTERN, value)
    assert effect.scopes == (f"read:records:{value}",)


def test_budget_spent_is_denied_without_a_mint() -> None:
    ctx = context(remaining=0.9)
    result = finish(call_flow(ctx, read_record, {"patient_id": "p-1"}, "c-1"))
    assert result.error_kind == "budget_exhausted"
    assert result.denied


def test_unknown_tool_is_a_denial_that_never_echoes_a_huge_or_secret_name() -> None:
    ctx = context()
    name = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl" + "x" * 500
    result = unknown_tool(ctx, name, "c-9", ["read_record"])
    assert result.denied
    assert result.error_kind == "unknown_tool"
    assert "eyJzdWIiOiJ4In0" not in result.message
    assert "available: read_record" in result.message
    assert len(result.tool) <= 64


# -- minting ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool_ttl", "default_ttl", "remaining", "expected"),
    [(30, 60, 300.0, 30), (None, 60, 300.0, 60), (30, 60, 10.7, 10), (None, 600, 59.99, 59)],
)
def test_ttl_is_the_smallest_of_tool_default_and_remaining_budget(
    tool_ttl: int | None, default_ttl: int, remaining: float, expected: int
) -> None:
    tool = scoped_tool("read:records:{patient_id}", ttl=tool_ttl)(no_credential.fn)
    mint = next(call_flow(context(remaining=remaining, default_ttl=default_ttl), tool, {"patient_id": "p"}, "c"))
    assert isinstance(mint, Mint)
    assert mint.ttl == expected


def test_the_mint_asks_for_exactly_the_rendered_scopes() -> None:
    @scoped_tool(["read:records:{ids}", "write:notes:{ids}"])
    def two(ids: list[str]) -> None:
        return None

    mint = next(call_flow(context(("read:records:*", "write:notes:*")), two, {"ids": ["a", "b"]}, "c"))
    assert isinstance(mint, Mint)
    assert mint.scopes == ("read:records:a", "read:records:b", "write:notes:a", "write:notes:b")


@pytest.mark.parametrize(
    ("error", "kind", "denied"),
    [
        (ScopeViolation(Problem(status=403, error_code="scope_violation")), "broker_refused", True),
        (ScopeMismatch(requested=("a:b:c",), granted=("a:b:*",)), "scope_mismatch", True),
        (TaskBudgetExhausted("spent"), "budget_exhausted", True),
        (BrokerUnavailable("down", method="POST", path="/v1/register"), "mint_failed", False),
    ],
)
def test_mint_failures_become_results_and_nothing_runs(error: Exception, kind: str, denied: bool) -> None:
    ctx = context()
    flow = call_flow(ctx, read_record, {"patient_id": "p-1"}, "c-1")
    next(flow)
    result = finish(flow, MintOutcome(None, error, 1.0, 1.1))
    assert (result.error_kind, result.denied, result.ok) == (kind, denied, False)
    assert "Run" not in repr(ctx.trace.events)
    assert types(ctx) == (["denied"] if denied else ["mint_failed"])
    if not denied:
        assert result.exception is error
        assert result.message == "read_record could not run: no credential could be obtained right now; try again later"


# -- the gate on verified claims ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": ("read:records:*",)},
        {"scope": ("read:records:p-1", "read:records:p-2")},
        {"scope": ("read:records:p-1", "read:records:p-1")},
        {"scope": ()},
        {"scope": ("read:records:p-1",), "task_id": "other-task"},
        {"scope": ("read:records:p-1",), "orch_id": "other-orch"},
    ],
)
def test_claims_that_do_not_match_exactly_are_released_and_denied_without_running(claims: dict[str, Any]) -> None:
    ctx = context()
    flow = call_flow(ctx, read_record, {"patient_id": "p-1"}, "c-1")
    next(flow)
    scope = claims.pop("scope")
    credential = FakeCredential(scope, **claims)
    effect = flow.send(MintOutcome(credential, None, 1.0, 1.1))
    assert isinstance(effect, Release)  # not Run: the body never sees a mismatched credential
    assert effect.credential is credential
    result = finish(flow, ReleaseOutcome(True, None, 1.2))
    assert result.denied
    assert result.error_kind == "scope_mismatch"
    assert types(ctx) == ["minted", "released", "denied"]


# -- running and releasing ----------------------------------------------------------------------------------------


def test_the_run_gets_the_credential_as_argument_only_when_the_tool_asks() -> None:
    _, credential, run = minted_and_ran(context(), {"patient_id": "p-1"})
    assert run.kwargs == {"patient_id": "p-1", "credential": credential}
    assert run.credential is credential
    assert run.timeout == 2.0
    _, credential, run = minted_and_ran(context(), {"patient_id": "p-1"}, tool=no_credential)
    assert run.kwargs == {"patient_id": "p-1"}
    assert run.credential is credential


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        ("ok", None, ""),
        ("error", "tool_error", "read_record failed (KeyError)"),
        ("timeout", "timeout", "read_record timed out after 2 s"),
        ("cancelled", "cancelled", "read_record was cancelled"),
    ],
)
def test_every_run_outcome_is_followed_by_a_release(status: Any, kind: str | None, message: str) -> None:
    ctx = context()
    flow, credential, _ = minted_and_ran(ctx, {"patient_id": "p-1"})
    error = KeyError("secret") if status == "error" else None
    effect = flow.send(RunOutcome(status, "value" if status == "ok" else None, error, 2.0, 2.5))
    assert isinstance(effect, Release)
    assert effect.credential is credential
    result = finish(flow, ReleaseOutcome(True, None, 2.6))
    assert (result.ok, result.error_kind, result.message) == (status == "ok", kind, message)
    assert result.jti == credential.claims.jti
    assert result.agent_id == credential.agent_id
    assert types(ctx) == ["minted", "executed", "released"]
    minted, executed, released = ctx.trace.events
    assert executed.outcome == status
    assert executed.run_time == pytest.approx(0.5)
    assert released.window == pytest.approx(2.6 - 1.01)
    assert minted.at == 1.01
    assert released.at == 2.6
    if status == "timeout":
        assert isinstance(result.exception, ToolTimeout)
    if status == "error":
        assert result.exception is error


def test_a_failed_release_is_recorded_with_the_expiry_and_does_not_change_the_result() -> None:
    ctx = context()
    flow, credential, _ = minted_and_ran(ctx, {"patient_id": "p-1"})
    flow.send(RunOutcome("ok", "fine", None, 2.0, 2.5))
    result = finish(flow, ReleaseOutcome(False, BrokerUnavailable("down"), 2.6))
    assert result.ok
    assert result.output == "fine"
    failed = ctx.trace.events[-1]
    assert failed.type == "release_failed"
    assert failed.to_dict()["exp"] == credential.claims.exp
    assert failed.to_dict()["error"] == "BrokerUnavailable"
    assert failed.jti == credential.claims.jti


def test_events_name_the_task_and_never_the_token() -> None:
    ctx = context()
    flow, credential, _ = minted_and_ran(ctx, {"patient_id": "p-1"})
    flow.send(RunOutcome("error", None, RuntimeError(credential.access_token), 2.0, 2.5))
    result = finish(flow, ReleaseOutcome(True, None, 2.6))
    assert credential.access_token not in result.content
    for event in ctx.trace.events:
        assert (event.task_id, event.orch_id) == (TASK_ID, ORCH_ID)
        assert credential.access_token not in repr(event.to_dict())
