"""Stage scopes that depend on the previous stage's output: templates obey the safe-value rule, and a scope
function may never hand out a wildcard. No sockets: this is decided before anything is minted."""

from __future__ import annotations

from typing import Any

import pytest

from agentwrit_tools.errors import ConfigurationError, UnsafeArgumentError
from agentwrit_tools.pipeline import Stage

INJECTED = ["*", "x:*", "a:b", "a b", "x\n", "../x", "%2A", "P\uff1a1", "\u2217", "", "x" * 10_000]


def _noop(ctx: Any) -> None:
    return None


def test_a_template_stage_scope_is_filled_from_the_previous_output() -> None:
    stage = Stage("response", "write:replies:{ticket}", _noop)
    assert stage.static_scope is None
    assert stage.scopes_for({"ticket": "T-1"}) == ("write:replies:T-1",)
    assert stage.scopes_for({"ticket": ["T-1", "T-2"]}) == ("write:replies:T-1", "write:replies:T-2")


def test_a_placeholder_free_stage_scope_is_static() -> None:
    stage = Stage("kb", ["read:kb:*", "write:replies:T-1"], _noop)
    assert stage.static_scope == ("read:kb:*", "write:replies:T-1")
    assert stage.scopes_for("anything") == ("read:kb:*", "write:replies:T-1")


@pytest.mark.parametrize("value", INJECTED)
def test_a_model_chosen_value_cannot_widen_a_template_stage_scope(value: str) -> None:
    stage = Stage("response", "write:replies:{ticket}", _noop)
    with pytest.raises(UnsafeArgumentError):
        stage.scopes_for({"ticket": value})


@pytest.mark.parametrize("value", ["*", "T-1:*"])
def test_a_scope_function_may_not_return_a_wildcard(value: str) -> None:
    stage = Stage("response", lambda found: f"write:replies:{found['ticket']}", _noop)
    with pytest.raises((UnsafeArgumentError, ConfigurationError)):
        stage.scopes_for({"ticket": value})
    assert stage.scopes_for({"ticket": "T-1"}) == ("write:replies:T-1",)


def test_a_template_needs_a_mapping_and_says_which_keys() -> None:
    stage = Stage("response", "write:replies:{ticket}", _noop)
    with pytest.raises(ConfigurationError, match="ticket"):
        stage.scopes_for("T-1")
    with pytest.raises(UnsafeArgumentError, match="missing"):
        stage.scopes_for({"other": "T-1"})


@pytest.mark.parametrize("bad", ["write:replies:{ticket", "write:{a:b}:x", "write:replies:{1x}", "x:{t}"])
def test_a_malformed_stage_template_is_a_declaration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        Stage("response", bad, _noop)
