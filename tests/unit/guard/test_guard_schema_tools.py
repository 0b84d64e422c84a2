"""Tools described by a JSON schema (MCP tools, Agents SDK FunctionTools) and tools bound to a resource: declared
and validated through the guard like any other, with no broker involved."""

from __future__ import annotations

from typing import Any

import pytest

from agentwrit_tools import ConfigurationError, ScopedTool
from agentwrit_tools._audience import resource_problem
from agentwrit_tools.guard._schema import ArgumentProblems

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"patient_id": {"type": "string"}, "limit": {"type": "integer"}, "tags": {"type": "array"}},
    "required": ["patient_id"],
}


def _body(arguments: dict[str, Any]) -> dict[str, Any]:
    return arguments


def _tool(scope: str = "read:records:{patient_id}", schema: dict[str, Any] | None = None, **options: Any) -> ScopedTool:
    return ScopedTool.from_schema(_body, schema or SCHEMA, name="get_record", scope=scope, **options)


def test_the_model_sees_the_schema_with_extra_arguments_forbidden() -> None:
    tool = _tool()
    assert tool.parameters["additionalProperties"] is False
    assert tool.parameters["properties"] == SCHEMA["properties"]
    allowing = _tool(schema={**SCHEMA, "additionalProperties": True})
    assert allowing.parameters["additionalProperties"] is True  # an explicit choice is kept


def test_valid_arguments_bind_to_one_arguments_parameter_and_render_the_scope() -> None:
    tool = _tool()
    bound = tool.bind('{"patient_id": "P-1", "limit": 3}')
    assert bound.kwargs == {"arguments": {"patient_id": "P-1", "limit": 3}}
    assert tool.render(bound) == ("read:records:P-1",)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, ("(arguments)", "missing required argument(s): patient_id")),
        ({"patient_id": 7}, ("patient_id", "does not satisfy the schema's 'type' rule")),
        (
            {"patient_id": "P-1", "sneaky": "*"},
            ("(arguments)", "does not satisfy the schema's 'additionalProperties' rule"),
        ),
        ("[1]", ("(arguments)", "must be a JSON object")),
        ("{", ("(arguments)", "not valid JSON")),
    ],
)
def test_invalid_arguments_name_the_place_and_rule_never_the_value(arguments: Any, problem: tuple[str, str]) -> None:
    with pytest.raises(ArgumentProblems) as refused:
        _tool().bind(arguments)
    assert refused.value.problems[0] == problem
    assert "sneaky" not in str(refused.value.problems)


@pytest.mark.parametrize(
    ("scope", "schema", "says"),
    [
        ("read:records:{patient}", None, "not an argument"),
        ("read:records:{limit}", None, "does not require it"),
        ("read:records:{tags}", {**SCHEMA, "required": ["patient_id", "tags"]}, "cannot form a scope identifier"),
        ("read:records:{patient_id}", {"type": "array"}, "of type 'object'"),
        ("read:records:{patient_id}", {"type": "object", "properties": 3}, "not a valid JSON schema"),
    ],
)
def test_templates_and_schemas_are_checked_when_declared(scope: str, schema: Any, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        _tool(scope, schema)


def test_the_body_must_take_the_validated_arguments() -> None:
    def wrong(patient_id: str) -> str:
        return patient_id

    with pytest.raises(ConfigurationError, match="'arguments'"):
        ScopedTool.from_schema(wrong, SCHEMA, name="get_record", scope="read:records:{patient_id}")


def test_an_audience_must_be_a_resource_url() -> None:
    assert _tool(audience="https://records.example/mcp").audience == "https://records.example/mcp"
    with pytest.raises(ConfigurationError, match="audience"):
        _tool(audience="records")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://records.example/mcp", True),
        ("http://127.0.0.1:8000/mcp", True),
        ("https://records.example", True),
        ("ftp://records.example/mcp", False),
        ("https:///mcp", False),
        ("https://user:pw@records.example/mcp", False),
        ("https://records.example/mcp#frag", False),
        ("https://records.example/m cp", False),
        ("https://records.example/\u00e9", False),
        ("https://records.example:99999/mcp", False),
        ("https://records.example/" + "a" * 600, False),
        ("", False),
        (None, False),
    ],
)
def test_what_counts_as_a_resource_url(value: object, ok: bool) -> None:
    assert (resource_problem(value) is None) is ok
