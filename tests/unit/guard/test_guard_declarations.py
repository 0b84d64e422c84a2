"""Declaring tools: schemas from signatures and docstrings, and every mistake caught at declaration time."""

from __future__ import annotations

import enum
import functools
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from agentwrit_tools import ConfigurationError, Credential, ScopedTool, scoped_tool, wrap_tool
from agentwrit_tools.guard._schema import ArgumentProblems


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class NoteRequest(BaseModel):
    """A note about a patient."""

    patient_id: str = Field(description="whose chart")
    text: str = Field(max_length=200)


@scoped_tool("read:records:{patient_id}", ttl=30, timeout=5)
def read_record(patient_id: str, credential: Credential, include_notes: bool = False) -> dict[str, Any]:
    """Read one patient's record.

    The record comes from the records service.

    Args:
        patient_id: The patient's id, for example
            ``p-1``.
        credential: injected by the guard.
        include_notes (bool): Whether to add the notes.

    Returns:
        The record.
    """
    return {}


def test_schema_comes_from_the_signature_and_the_docstring() -> None:
    assert read_record.name == "read_record"
    assert read_record.description == "Read one patient's record.\n\nThe record comes from the records service."
    assert read_record.parameters == {
        "type": "object",
        "properties": {
            "patient_id": {"type": "string", "description": "The patient's id, for example ``p-1``."},
            "include_notes": {"type": "boolean", "default": False, "description": "Whether to add the notes."},
        },
        "required": ["patient_id"],
        "additionalProperties": False,
    }
    assert read_record.scope_templates == ("read:records:{patient_id}",)
    assert (read_record.ttl, read_record.timeout, read_record.is_async) == (30, 5.0, False)
    assert read_record.takes_credential


def test_credential_is_never_in_the_schema_and_cannot_be_sent_by_the_model() -> None:
    assert "credential" not in read_record.parameters["properties"]
    assert "credential" not in read_record.parameters["required"]
    with pytest.raises(ArgumentProblems) as problems:
        read_record.bind({"patient_id": "p-1", "credential": "forged"})
    assert problems.value.problems[0][0] == "credential"


def test_parameters_is_a_fresh_copy_each_time() -> None:
    schema = read_record.parameters
    schema["properties"].clear()
    assert "patient_id" in read_record.parameters["properties"]


def test_pydantic_model_parameter_gives_its_own_schema_and_the_tool_receives_the_instance() -> None:
    @scoped_tool("write:notes:{patient_id}")
    async def add_note(request: NoteRequest, credential: Credential) -> str:
        return request.text

    assert add_note.is_async
    assert add_note.parameters["properties"]["patient_id"] == {"type": "string", "description": "whose chart"}
    assert add_note.parameters["required"] == ["patient_id", "text"]
    bound = add_note.bind({"patient_id": "p-1", "text": "hi"})
    assert isinstance(bound.kwargs["request"], NoteRequest)
    assert add_note.render(bound) == ("write:notes:p-1",)


def test_names_that_clash_with_pydantic_attributes_are_fine() -> None:
    @scoped_tool("read:docs:{json}")
    def fetch(json: str, model_config: int = 1, schema: str = "x") -> str:
        return json

    assert set(fetch.parameters["properties"]) == {"json", "model_config", "schema"}
    assert fetch.bind({"json": "a"}).kwargs == {"json": "a", "model_config": 1, "schema": "x"}


def test_list_arguments_render_several_scopes_from_validated_values() -> None:
    @scoped_tool(["read:records:{ids}", "write:audit:{team}"])
    def bulk(ids: list[str], team: Literal["a", "b"], count: int = 1) -> None:
        return None

    bound = bulk.bind('{"ids": ["p-1", "p-2", "p-1"], "team": "a"}')
    assert bulk.render(bound) == ("read:records:p-1", "read:records:p-2", "write:audit:a")


def test_ints_and_enums_render_from_their_validated_value() -> None:
    @scoped_tool("read:tickets:{number}")
    def ticket(number: int) -> None:
        return None

    @scoped_tool("paint:walls:{color}")
    def paint(color: Color) -> None:
        return None

    assert ticket.render(ticket.bind({"number": "0042"})) == ("read:tickets:42",)  # what the tool gets: 42
    assert paint.render(paint.bind({"color": "red"})) == ("paint:walls:red",)


def test_invalid_arguments_name_the_field_but_never_echo_the_value() -> None:
    hostile = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
    for arguments in ({"patient_id": 7}, {"patient_id": ["x"]}, {}, "not json", "[1]", {hostile: 1}):
        with pytest.raises(ArgumentProblems) as problems:
            read_record.bind(arguments)  # type: ignore[arg-type]
        text = repr(problems.value.problems)
        assert hostile not in text
        assert problems.value.problems


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: scoped_tool(lambda patient_id: None), id="bare-decorator"),
        pytest.param(lambda: scoped_tool(), id="empty-call"),
        pytest.param(lambda: scoped_tool([]), id="empty-list"),
    ],
)
def test_a_tool_without_a_scope_template_is_refused_with_a_fix(make: Any) -> None:
    with pytest.raises(ConfigurationError) as refused:
        make()
    assert '@scoped_tool("read:records:{patient_id}")' in str(refused.value)


def test_bare_decorator_on_a_def_is_refused_at_declaration() -> None:
    with pytest.raises(ConfigurationError, match="without a scope template"):

        @scoped_tool  # type: ignore[arg-type]
        def lookup(patient_id: str) -> None:
            return None


def _fn(patient_id: str, amount: float = 0.0, flag: bool = False, extra: dict[str, int] | None = None) -> None:
    return None


@pytest.mark.parametrize(
    ("template", "options", "fragment"),
    [
        ("read:records:{patient}", {}, "names {patient}, which is not an argument"),
        ("read:records:{credential}", {}, "cannot use {credential}"),
        ("pay:amount:{amount}", {}, "cannot form a scope identifier"),
        ("set:flag:{flag}", {}, "cannot form a scope identifier"),
        ("read:extra:{extra}", {}, "cannot form a scope identifier"),
        ("read:records", {}, "three parts"),
        ("read:records:{patient_id}*", {}, "'*'"),
        ("read:records:{patient_id}", {"ttl": 0}, "ttl"),
        ("read:records:{patient_id}", {"ttl": True}, "ttl"),
        ("read:records:{patient_id}", {"timeout": -1}, "timeout"),
        ("read:records:{patient_id}", {"ttl": 5, "timeout": 10}, "exceeds ttl"),
        ("read:records:{patient_id}", {"name": "has space"}, "tool name"),
        ("read:records:{patient_id}", {"name": "x" * 65}, "tool name"),
    ],
)
def test_declaration_mistakes_are_configuration_errors(template: str, options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        scoped_tool(template, **options)(_fn)
    assert fragment in str(refused.value)


def test_signatures_the_model_cannot_fill_are_refused() -> None:
    def star(*ids: str) -> None:
        return None

    def kw(**ids: str) -> None:
        return None

    def positional(patient_id: str, /) -> None:
        return None

    for fn in (star, kw, positional):
        with pytest.raises(ConfigurationError):
            wrap_tool(fn, "read:records:x")


def test_wrapping_without_decorating() -> None:
    def lookup(patient_id: Annotated[str, Field(description="who")]) -> str:
        return patient_id

    wrapped = [
        scoped_tool("read:records:{patient_id}")(lookup),
        wrap_tool(lookup, "read:records:{patient_id}", name="lookup_2"),
        ScopedTool.wrap(lookup, scope="read:records:{patient_id}", description="Find a record."),
    ]
    assert [t.name for t in wrapped] == ["lookup", "lookup_2", "lookup"]
    assert wrapped[2].description == "Find a record."
    assert all(t.fn is lookup for t in wrapped)
    assert wrapped[0].parameters["properties"]["patient_id"]["description"] == "who"
    with pytest.raises(ConfigurationError, match="already a scoped tool"):
        wrap_tool(wrapped[0], "read:records:{patient_id}")  # type: ignore[arg-type]


def test_lambdas_and_partials_need_a_name_and_async_callables_are_detected() -> None:
    with pytest.raises(ConfigurationError, match="tool name"):
        wrap_tool(lambda patient_id: None, "read:records:{patient_id}")

    async def fetch(patient_id: str, limit: int) -> None:
        return None

    class Callable:
        async def __call__(self, patient_id: str) -> None:
            return None

    partial = wrap_tool(functools.partial(fetch, limit=3), "read:records:{patient_id}", name="fetch3")
    instance = wrap_tool(Callable(), "read:records:{patient_id}", name="callable")
    assert partial.is_async
    assert instance.is_async
    assert set(instance.parameters["properties"]) == {"patient_id"}


def test_calling_a_scoped_tool_directly_never_runs_the_body() -> None:
    ran: list[str] = []

    @scoped_tool("read:records:{patient_id}")
    def lookup(patient_id: str) -> str:
        ran.append(patient_id)
        return patient_id

    with pytest.raises(ConfigurationError, match="runs only through a task"):
        lookup("p-1")
    with pytest.raises(ConfigurationError):
        lookup(patient_id="p-1")
    assert ran == []
    assert lookup.fn("p-1") == "p-1"  # the body itself, on purpose, for unit tests
    assert "read:records:{patient_id}" in repr(lookup)
