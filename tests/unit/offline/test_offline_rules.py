"""Rules: validated on construction, loaded from JSON with errors that say where; templates that cannot be abused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentwrit_tools.errors import ConfigurationError
from agentwrit_tools.offline import (
    FollowUp,
    Misbehaviour,
    Rule,
    RulesError,
    RuleSet,
    ToolCallSpec,
    load_rules,
    parse_rules,
)
from agentwrit_tools.offline._template import MissingValue, placeholders, render, render_value

RECORD = r"(?i)record.*\b(?P<patient_id>P-\d+)"

EXAMPLE = {
    "max_tool_turns": 4,
    "rules": [
        {
            "name": "patient-record",
            "description": "show a patient's record",
            "when": RECORD,
            "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}", "fields": ["summary"]}}],
            "follow_ups": [
                {
                    "after": "get_record",
                    "when": '"physician": "(?P<physician>[^"]+)"',
                    "calls": [{"tool": "get_physician", "arguments": {"name": "{physician}"}}],
                }
            ],
            "answer": "Record of {patient_id}: {get_record}",
        },
        {
            "name": "nosy",
            "when": r"(?i)labs.*\b(?P<patient_id>P-\d+)",
            "calls": [
                {
                    "tool": "get_labs",
                    "arguments": {"patient_id": "{patient_id}"},
                    "misbehave": {"kind": "other_subject", "argument": "patient_id", "value": "P-0002"},
                }
            ],
        },
    ],
}


def test_a_json_rule_set_becomes_frozen_dataclasses() -> None:
    rules = parse_rules(EXAMPLE)
    assert rules.max_tool_turns == 4
    first = rules.rules[0]
    assert isinstance(first, Rule)
    assert first.calls == (ToolCallSpec("get_record", {"patient_id": "{patient_id}", "fields": ["summary"]}),)
    assert isinstance(first.follow_ups[0], FollowUp)
    assert rules.rules[1].calls[0].misbehave == Misbehaviour("other_subject", "patient_id", "P-0002")
    with pytest.raises(AttributeError):
        first.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.calls[0].arguments["patient_id"] = "*"  # type: ignore[index]


def test_a_bare_list_is_a_rule_set_and_a_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(EXAMPLE["rules"]), encoding="utf-8")
    assert load_rules(path) == parse_rules(EXAMPLE["rules"])
    assert load_rules(str(path)).rules[0].name == "patient-record"


def test_python_construction_takes_lists_and_matches_first_rule_first() -> None:
    rules = RuleSet(
        [  # type: ignore[arg-type]
            Rule("specific", r"record of (?P<id>P-\d+)", [ToolCallSpec("get_record", {"patient_id": "{id}"})]),  # type: ignore[arg-type]
            Rule("general", r"record"),
        ]
    )
    assert isinstance(rules.rules, tuple)
    assert rules.first_match("the record of P-7") == (rules.rules[0], {"id": "P-7"})
    assert rules.first_match("a record") == (rules.rules[1], {})
    assert rules.first_match("nothing") is None


@pytest.mark.parametrize(
    ("data", "location", "reason"),
    [
        ({"rules": [{"name": "r", "when": "("}]}, "rules[0]", "invalid regular expression"),
        ({"rules": [{"name": "r", "when": "x", "calls": [{"tool": "get record"}]}]}, "rules[0].calls[0]", "tool name"),
        (
            {"rules": [{"name": "r", "when": "x", "calls": [{"tool": "t", "arguments": {"p": "{pid}"}}]}]},
            "rules[0]",
            "{pid}, which is not a named group",
        ),
        (
            {"rules": [{"name": "r", "when": "x", "calls": [{"tool": "t", "misbehave": {"kind": "wildcard"}}]}]},
            "rules[0].calls[0].misbehave",
            "needs the 'argument'",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "when": "x",
                        "calls": [{"tool": "t", "misbehave": {"kind": "other_subject", "argument": "a"}}],
                    }
                ]
            },
            "rules[0].calls[0].misbehave",
            "needs the 'value'",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "when": "x",
                        "calls": [{"tool": "t", "misbehave": {"kind": "dangerous_tool", "argument": "a"}}],
                    }
                ]
            },
            "rules[0].calls[0].misbehave",
            "takes no 'argument'",
        ),
        (
            {"rules": [{"name": "r", "when": "x", "calls": [{"tool": "t", "misbehave": {"kind": "evil"}}]}]},
            "misbehave.kind",
            "",
        ),
        (
            {"rules": [{"name": "r", "when": "x", "calls": [{"tool": "t", "misbehaves": {}}]}]},
            "calls[0].misbehaves",
            "unknown field",
        ),
        (
            {"rules": [{"name": "r", "when": "x", "follow_ups": [{"after": "t", "calls": []}]}]},
            "follow_ups[0]",
            "at least one",
        ),
        (
            {
                "rules": [
                    {"name": "r", "when": "x", "follow_ups": [{"after": "t", "when": "[", "calls": [{"tool": "u"}]}]}
                ]
            },
            "follow_ups[0]",
            "regular",
        ),
        ({"rules": [{"when": "x"}]}, "rules[0].name", "required field is missing"),
        ({"rules": [{"name": " ", "when": "x"}]}, "rules[0]", "non-empty 'name'"),
        ({"rules": [{"name": "r", "when": "x"}, {"name": "r", "when": "y"}]}, "", "names must be unique"),
        ({"rules": "x"}, "rules", "should be a list"),
        (
            {"rules": [{"name": "r", "when": "x", "calls": [{"tool": "t", "arguments": [1]}]}]},
            "arguments",
            "should be an object",
        ),
        ({"rules": [], "max_tool_turns": 0}, "", "at least 1"),
        ({"rulez": []}, "rulez", "unknown field"),
        ("rules", "", "expected an object"),
    ],
)
def test_malformed_rules_say_what_and_where(data: object, location: str, reason: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(data, source="demo.json")
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert error.source == "demo.json"
    assert location in error.location
    assert reason in error.reason
    assert str(error).startswith("demo.json: ")
    assert "\n" not in str(error)


def test_python_construction_raises_the_same_errors() -> None:
    with pytest.raises(RulesError, match="not a named group"):
        Rule("r", "x", (ToolCallSpec("t", {"p": "{pid}"}),))
    with pytest.raises(RulesError, match="tool name"):
        ToolCallSpec("")
    with pytest.raises(RulesError, match="needs the 'argument'"):
        Misbehaviour("injection")
    with pytest.raises(RulesError, match="'arguments' must be an object"):
        ToolCallSpec("t", ["x"])  # type: ignore[arg-type]


def test_misbehaviour_value_placeholders_must_be_groups_too() -> None:
    with pytest.raises(RulesError, match=r"\{other\}"):
        Rule("r", RECORD, (ToolCallSpec("t", {}, Misbehaviour("other_subject", "patient_id", "{other}")),))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ("\udcff", "cannot read"),
        ('{"rules": [{"name": "r", "when": "("}]}', "invalid regular expression"),
    ],
)
def test_rules_file_errors_are_one_line(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "rules.json"
    if content == "\udcff":
        path.write_bytes(b"\xff\xfe\x00")
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_a_directory_is_not_a_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="is a directory"):
        load_rules(tmp_path)


def test_templates_fill_names_only() -> None:
    assert placeholders("{a} and {b} and {a} {{c}} {1} {x.y}") == ("a", "b")
    assert render("{a}-{{a}}-{x.__class__}-{", {"a": "1", "x": "2"}) == "1-{a}-{x.__class__}-{"
    assert render('{"k": 1}', {}) == '{"k": 1}'
    with pytest.raises(MissingValue) as caught:
        render("{a}{b}", {"a": "1"})
    assert caught.value.name == "b"
    assert render("{a}{b}", {"a": "1"}, missing=lambda name: f"<{name}>") == "1<b>"


def test_json_values_are_filled_recursively_and_constants_kept() -> None:
    value = {"id": "{a}", "n": 3, "flag": True, "list": ["{a}", {"deep": "x{a}"}], "none": None}
    assert render_value(value, {"a": "P-1"}) == {
        "id": "P-1",
        "n": 3,
        "flag": True,
        "list": ["P-1", {"deep": "xP-1"}],
        "none": None,
    }


def test_the_documented_example_is_a_valid_rule_set() -> None:
    import textwrap

    from agentwrit_tools.offline import _rulesfile

    doc = _rulesfile.__doc__ or ""
    rules = parse_rules(json.loads(textwrap.dedent(doc[doc.index("    {") :])))
    assert [rule.name for rule in rules.rules] == ["patient-record", "curious-model"]
    assert rules.rules[0].match("the record of P-1042") == {"patient_id": "P-1042"}
