"""Example-based tests of agentwrit_tools.scopes: parsing, coverage, templates and the injection corpus."""

from __future__ import annotations

import re

import pytest

from agentwrit_tools.errors import ScopeError, UnsafeArgumentError
from agentwrit_tools.scopes import (
    MAX_RENDERED_SCOPES,
    MAX_VALUE_LENGTH,
    SAFE_VALUE_PATTERN,
    WILDCARD,
    Scope,
    ScopeTemplate,
    covers,
    covers_all,
    is_identifier,
    is_plain_scope,
    is_valid_scope,
    parse_scope,
    render_scopes,
    safe_value,
    uncovered,
)

# ---------------------------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("read:data:x", Scope("read", "data", "x")),
        ("read:data:*", Scope("read", "data", "*")),
        ("write:billing:customer-12345", Scope("write", "billing", "customer-12345")),
        ("admin:launch-tokens:*", Scope("admin", "launch-tokens", "*")),
        ("read:records:a.b@c+d_e", Scope("read", "records", "a.b@c+d_e")),
    ],
)
def test_parse_valid_scopes(text: str, expected: Scope) -> None:
    parsed = parse_scope(text)
    assert parsed == expected
    assert str(parsed) == text
    assert is_valid_scope(text)


def test_wildcard_flag_is_about_the_identifier_only() -> None:
    assert parse_scope("read:data:*").is_wildcard
    assert not parse_scope("read:data:x").is_wildcard


@pytest.mark.parametrize(
    "text",
    [
        "",
        "read",
        "read:data",
        "read:data:x:y",
        ":data:x",
        "read::x",
        "read:data:",
        "::",
        ":::",
        "read:data:x:",
    ],
)
def test_parse_refuses_anything_but_three_non_empty_parts(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)
    assert not is_valid_scope(text)


@pytest.mark.parametrize(
    "text",
    [
        "*:data:x",
        "read:*:x",
        "*:*:*",
        "re*ad:data:x",
        "read:da*ta:x",
        "read:data:x*",
        "read:data:*x",
        "read:data:**",
        "read:data:a*b",
    ],
)
def test_wildcard_only_as_the_whole_identifier(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


@pytest.mark.parametrize(
    "text",
    [
        " read:data:x",
        "read :data:x",
        "read:data:x ",
        "read:da ta:x",
        "read:data:a b",
        "read:data:x\n",
        "read:data:x\r",
        "read:data:\tx",
        "read:data:x\x00",
        "read:data:x\x1b[31m",
        "read:data:x\x7f",
        "read\x0b:data:x",
        "read:data:x\u00a0",  # no-break space
        "read:data:x\u2028",  # line separator
        "read:data:x\u3000",  # ideographic space
    ],
)
def test_whitespace_and_control_characters_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)
    assert not is_valid_scope(text)


@pytest.mark.parametrize("value", [None, 1, 1.5, b"read:data:x", ["read", "data", "x"], Scope("read", "data", "x")])
def test_parse_refuses_non_strings(value: object) -> None:
    with pytest.raises(ScopeError, match="must be a string"):
        parse_scope(value)  # type: ignore[arg-type]
    assert not is_valid_scope(value)


def test_scope_error_is_a_value_error_and_carries_the_text() -> None:
    with pytest.raises(ValueError, match="three parts") as caught:
        parse_scope("read:data")
    assert isinstance(caught.value, ScopeError)
    assert caught.value.scope == "read:data"


def test_error_message_truncates_huge_input() -> None:
    huge = "a" * 10_000
    with pytest.raises(ScopeError) as caught:
        parse_scope(huge)
    assert len(str(caught.value)) < 400


# ---------------------------------------------------------------------------------------------------------------
# Coverage of one scope


@pytest.mark.parametrize(
    ("held", "requested", "expected"),
    [
        ("read:data:x", "read:data:x", True),
        ("read:data:*", "read:data:x", True),
        ("read:data:*", "read:data:*", True),
        ("read:data:x", "read:data:*", False),
        ("read:data:x", "read:data:y", False),
        ("read:data:*", "write:data:x", False),
        ("read:data:*", "read:other:x", False),
        ("read:data:x", "write:data:x", False),
        ("read:data:X", "read:data:x", False),  # identifiers are case-sensitive
        ("read:data:*", "read:Data:x", False),
    ],
)
def test_covers_one(held: str, requested: str, expected: bool) -> None:
    assert covers(held, requested) is expected
    assert covers(parse_scope(held), parse_scope(requested)) is expected
    assert parse_scope(held).covers(parse_scope(requested)) is expected


def test_covers_refuses_malformed_input_rather_than_answering() -> None:
    with pytest.raises(ScopeError):
        covers("read:data:*", "read:data")
    with pytest.raises(ScopeError):
        covers("read:*:*", "read:data:x")


# ---------------------------------------------------------------------------------------------------------------
# Coverage of lists


def test_covers_all_every_requested_must_be_covered_by_some_held() -> None:
    held = ["read:data:*", "write:data:x"]
    assert covers_all(held, ["read:data:a", "read:data:b", "write:data:x"])
    assert not covers_all(held, ["read:data:a", "write:data:y"])
    assert not covers_all(held, ["delete:data:x"])


def test_empty_request_is_covered_and_empty_holding_covers_nothing() -> None:
    assert covers_all([], [])
    assert covers_all(["read:data:x"], [])
    assert not covers_all([], ["read:data:x"])


def test_covers_all_accepts_iterators_and_scope_objects() -> None:
    held = iter([parse_scope("read:data:*")])
    requested: list[str | Scope] = ["read:data:1", parse_scope("read:data:2")]
    assert covers_all(held, (s for s in requested))


def test_covers_all_refuses_malformed_members() -> None:
    with pytest.raises(ScopeError):
        covers_all(["read:data:*", "bad"], ["read:data:x"])
    with pytest.raises(ScopeError):
        covers_all(["read:data:*"], ["read:data:x", "read:data:x:y"])


def test_uncovered_lists_missing_scopes_in_request_order() -> None:
    held = ["read:data:*", "write:data:x"]
    requested = ["write:data:y", "read:data:a", "delete:data:x", "write:data:x"]
    assert uncovered(held, requested) == ["write:data:y", "delete:data:x"]
    assert uncovered(held, ["read:data:a"]) == []
    assert uncovered([], ["read:data:a", "read:data:b"]) == ["read:data:a", "read:data:b"]


def test_uncovered_normalises_scope_objects_to_text() -> None:
    assert uncovered([], [Scope("read", "data", "x")]) == ["read:data:x"]


def test_uncovered_keeps_duplicates_of_the_request() -> None:
    assert uncovered([], ["read:data:x", "read:data:x"]) == ["read:data:x", "read:data:x"]


# ---------------------------------------------------------------------------------------------------------------
# Templates


def test_template_single_placeholder() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    assert template.placeholders == ("patient_id",)
    assert template.render({"patient_id": "P-1001"}) == ("read:records:P-1001",)
    assert template.render({"patient_id": 42}) == ("read:records:42",)


def test_template_ignores_unrelated_arguments() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    assert template.render({"patient_id": "P1", "note": "anything * at : all"}) == ("read:records:P1",)


def test_template_several_placeholders() -> None:
    template = ScopeTemplate.compile("read:{kind}:{org}-{item}")
    assert template.placeholders == ("kind", "org", "item")
    assert template.render({"kind": "tickets", "org": "acme", "item": 7}) == ("read:tickets:acme-7",)


def test_template_repeated_placeholder_is_one_argument() -> None:
    template = ScopeTemplate.compile("read:{x}:{x}")
    assert template.placeholders == ("x",)
    assert template.render({"x": "a"}) == ("read:a:a",)


def test_template_list_argument_renders_one_scope_per_element() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    assert template.render({"patient_id": ["P1", "P2", "P3"]}) == (
        "read:records:P1",
        "read:records:P2",
        "read:records:P3",
    )
    assert template.render({"patient_id": ("P1",)}) == ("read:records:P1",)


def test_template_two_list_arguments_render_their_product() -> None:
    template = ScopeTemplate.compile("read:{kind}:{item}")
    rendered = template.render({"kind": ["a", "b"], "item": [1, 2, 3]})
    assert rendered == (
        "read:a:1",
        "read:a:2",
        "read:a:3",
        "read:b:1",
        "read:b:2",
        "read:b:3",
    )


def test_template_deduplicates_and_keeps_first_order() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    assert template.render({"patient_id": ["P2", "P1", "P2", "P1"]}) == ("read:records:P2", "read:records:P1")
    # An int and its text render the same scope, once.
    assert template.render({"patient_id": [7, "7"]}) == ("read:records:7",)


def test_template_missing_argument() -> None:
    template = ScopeTemplate.compile("read:{kind}:{item}")
    with pytest.raises(UnsafeArgumentError) as caught:
        template.render({"kind": "a"})
    assert caught.value.argument == "item"
    assert caught.value.reason == "the argument is missing"
    assert caught.value.template == "read:{kind}:{item}"


def test_template_empty_list() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    with pytest.raises(UnsafeArgumentError, match="empty"):
        template.render({"patient_id": []})
    with pytest.raises(UnsafeArgumentError, match="empty"):
        template.render({"patient_id": ()})


@pytest.mark.parametrize(
    "value",
    [True, False, 1.0, 1.5, float("nan"), None, {"a": 1}, {"x"}, b"x", object(), ["ok", None], [["nested"]]],
)
def test_template_refuses_values_without_a_canonical_text(value: object) -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    with pytest.raises(UnsafeArgumentError) as caught:
        template.render({"patient_id": value})
    assert caught.value.argument == "patient_id"


def test_unsafe_argument_error_never_echoes_the_value() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    hostile = "secret-token-value-" + "*" * 50
    with pytest.raises(UnsafeArgumentError) as caught:
        template.render({"patient_id": hostile})
    assert hostile not in str(caught.value)
    assert isinstance(caught.value, ScopeError)


def test_placeholder_free_template_renders_itself_without_arguments() -> None:
    assert ScopeTemplate.compile("read:catalog:*").render({}) == ("read:catalog:*",)
    literal = ScopeTemplate.compile("read:catalog:public")
    assert literal.placeholders == ()
    assert literal.render({"anything": "*"}) == ("read:catalog:public",)


def test_wildcard_identifier_with_placeholder_elsewhere_is_allowed() -> None:
    template = ScopeTemplate.compile("read:{kind}:*")
    assert template.render({"kind": "tickets"}) == ("read:tickets:*",)


def test_a_placeholder_cannot_render_a_wildcard() -> None:
    template = ScopeTemplate.compile("read:{kind}:x")
    with pytest.raises(UnsafeArgumentError):
        template.render({"kind": "*"})


@pytest.mark.parametrize(
    "template",
    [
        "",
        "{",
        "}",
        "read:data:{",
        "read:data:}",
        "read:data:{}",
        "read:data:{1x}",
        "read:data:{a:b}",
        "read:data:{a!r}",
        "read:data:{a.b}",
        "read:data:{a[0]}",
        "read:data:{{a}}",
        "read:data:{ a }",
        "read:{id}",
        "{id}",
        "read:data:{id}:x",
        "read:data:x:{id}",
        "read:data:{id}*",
        "read:data:*{id}",
        "*:data:{id}",
        "read:*:{id}",
        "read:{id}*:x",
        "read:data:{id} ",
        "read:da ta:{id}",
        "read:data:{id}\n",
    ],
)
def test_malformed_templates_raise_scope_error(template: str) -> None:
    with pytest.raises(ScopeError):
        ScopeTemplate.compile(template)


@pytest.mark.parametrize("template", [None, 5, b"read:data:{x}"])
def test_template_must_be_a_string(template: object) -> None:
    with pytest.raises(ScopeError):
        ScopeTemplate.compile(template)  # type: ignore[arg-type]


def test_compile_error_is_not_an_unsafe_argument_error() -> None:
    # A bad template is the developer's mistake, not the model's; callers tell the two apart.
    with pytest.raises(ScopeError) as caught:
        ScopeTemplate.compile("read:data:{a!r}")
    assert not isinstance(caught.value, UnsafeArgumentError)


def test_render_scopes_merges_templates_in_declaration_order() -> None:
    templates = [
        ScopeTemplate.compile("read:records:{patient_id}"),
        ScopeTemplate.compile("read:catalog:*"),
        ScopeTemplate.compile("read:records:{other}"),
    ]
    rendered = render_scopes(templates, {"patient_id": ["P1", "P2"], "other": "P1"})
    assert rendered == ("read:records:P1", "read:records:P2", "read:catalog:*")


def test_render_scopes_stops_on_the_first_unsafe_value() -> None:
    templates = [ScopeTemplate.compile("read:records:{a}"), ScopeTemplate.compile("read:records:{b}")]
    with pytest.raises(UnsafeArgumentError) as caught:
        render_scopes(templates, {"a": "ok", "b": "*"})
    assert caught.value.argument == "b"


def test_render_scopes_of_nothing_is_nothing() -> None:
    assert render_scopes([], {"a": 1}) == ()


def test_rendered_scopes_parse_and_are_covered_by_the_wildcard_version() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    for scope in template.render({"patient_id": ["P1", "x" * MAX_VALUE_LENGTH, "a.b@c+d-e_f", 0]}):
        assert covers("read:records:*", scope)
        assert not parse_scope(scope).is_wildcard


# ---------------------------------------------------------------------------------------------------------------
# The injection corpus: values a model might choose to widen or split a rendered scope.

INJECTION_CORPUS = [
    "*",
    "c-1:*",
    "a:b",
    "a b",
    "x\n",
    "x\t",
    "\x00",
    "../x",
    "%2A",
    "x%3A*",
    "P\uff1a1",  # FULLWIDTH COLON
    "\u2217",  # ASTERISK OPERATOR
    "\uff0a",  # FULLWIDTH ASTERISK
    "",
    "x" * (MAX_VALUE_LENGTH + 1),
    # More of the same family.
    " x",
    "x ",
    "x\r\n",
    "x\x1b",
    "x\x85",
    "x\u200b",  # ZERO WIDTH SPACE
    "x\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\ufe55",  # SMALL COLON
    "\u2236",  # RATIO
    "\u066d",  # ARABIC FIVE POINTED STAR
    "x/y",
    "x\\y",
    "..",
    ".x",
    "-x",
    "+x",
    "@x",
    "{x}",
    "{0}",
    "x,y",
    "x;y",
    "x|y",
    "x'y",
    'x"y',
    "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE (non-ASCII letter)
    "\uff11",  # FULLWIDTH DIGIT ONE
    "caf\u00e9",
]


@pytest.mark.parametrize("value", INJECTION_CORPUS, ids=lambda v: repr(v)[:40])
def test_injection_corpus_refused(value: str) -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    with pytest.raises(UnsafeArgumentError):
        template.render({"patient_id": value})
    with pytest.raises(UnsafeArgumentError):
        template.render({"patient_id": ["P1", value]})
    with pytest.raises(UnsafeArgumentError):
        safe_value("patient_id", value, template.template)
    assert not re.fullmatch(SAFE_VALUE_PATTERN, value)


def test_negative_integers_are_refused_like_their_text() -> None:
    template = ScopeTemplate.compile("read:records:{n}")
    with pytest.raises(UnsafeArgumentError):
        template.render({"n": -1})


def test_maximum_length_is_accepted_and_one_more_is_not() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    longest = "x" * MAX_VALUE_LENGTH
    assert MAX_VALUE_LENGTH == 128
    assert template.render({"patient_id": longest}) == (f"read:records:{longest}",)
    with pytest.raises(UnsafeArgumentError, match="longer than 128"):
        template.render({"patient_id": longest + "x"})


def test_rendered_identifier_is_never_the_wildcard() -> None:
    template = ScopeTemplate.compile("read:records:{patient_id}")
    with pytest.raises(UnsafeArgumentError):
        template.render({"patient_id": WILDCARD})


# ---------------------------------------------------------------------------------------------------------------
# Regressions


@pytest.mark.parametrize(
    "text",
    [
        "read:data:x\x80",  # C1 control characters are control characters too
        "read:data:x\x9b",  # CSI: starts a terminal escape sequence
        "read\x90:data:x",
        "read:data\x9f:x",
        "read:data:x\u200b",  # ZERO WIDTH SPACE: invisible, so two different scopes would look the same
        "read:data:\u200bx",
        "read:data:x\u202e",  # RIGHT-TO-LEFT OVERRIDE: reorders what an operator reads in a log
        "read:data:\ufeffx",  # BYTE ORDER MARK
        "read:da\u2060ta:x",  # WORD JOINER
        "read:data:\ud800",  # a lone surrogate cannot even be encoded for the wire
    ],
)
def test_invisible_and_c1_control_characters_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)
    assert not is_valid_scope(text)


def test_visible_non_ascii_text_is_still_a_valid_held_scope() -> None:
    # Parsing is for scopes developers write (ceilings, tool declarations): only rendering is ASCII-only.
    assert parse_scope("read:données:café") == Scope("read", "données", "café")


def test_huge_integer_is_refused_as_an_unsafe_argument() -> None:
    # str() of an int past the interpreter's digit limit raises a bare ValueError; the caller expects a refusal.
    template = ScopeTemplate.compile("read:records:{n}")
    with pytest.raises(UnsafeArgumentError, match="longer than 128"):
        template.render({"n": 10**5000})
    with pytest.raises(UnsafeArgumentError, match="longer than 128"):
        template.render({"n": 10**128})
    assert template.render({"n": 10**128 - 1}) == ("read:records:" + "9" * 128,)


def test_int_and_str_subclasses_render_their_own_value_not_their_str() -> None:
    # The scope must name what the tool will receive. A subclass's __str__ (an IntEnum's name on some Python
    # versions, or any override) would make the credential name a different record than the argument.
    class Renamed(int):
        def __str__(self) -> str:
            return "other-patient"

    class Relabelled(str):
        def __str__(self) -> str:
            return "other-patient"

    template = ScopeTemplate.compile("read:records:{patient_id}")
    assert template.render({"patient_id": Renamed(7)}) == ("read:records:7",)
    assert template.render({"patient_id": Relabelled("P7")}) == ("read:records:P7",)
    assert template.render({"patient_id": [Relabelled("P7"), Renamed(8)]}) == ("read:records:P7", "read:records:8")


def test_list_arguments_cannot_make_a_template_render_without_bound() -> None:
    # Two model-chosen lists multiply: 1 000 x 1 000 ids would be a million scopes in one token request.
    template = ScopeTemplate.compile("read:{kind}:{item}")
    with pytest.raises(UnsafeArgumentError, match="too many scopes"):
        template.render({"kind": [f"k{i}" for i in range(1000)], "item": list(range(1000))})
    # Each list alone is within the bound; their product is not, and the refusal names the list that tipped it.
    with pytest.raises(UnsafeArgumentError, match="too many scopes") as caught:
        template.render({"kind": [f"k{i}" for i in range(20)], "item": list(range(20))})
    assert caught.value.argument == "item"
    with pytest.raises(UnsafeArgumentError, match="too many scopes") as caught:
        template.render({"kind": "a", "item": list(range(MAX_RENDERED_SCOPES + 1))})
    assert caught.value.argument == "item"


def test_the_bound_counts_distinct_scopes() -> None:
    template = ScopeTemplate.compile("read:{kind}:{item}")
    side = int(MAX_RENDERED_SCOPES**0.5)
    rendered = template.render({"kind": [f"k{i}" for i in range(side)], "item": list(range(side))})
    assert len(rendered) == side * side <= MAX_RENDERED_SCOPES
    repeated = template.render({"kind": "a", "item": [1] * (MAX_RENDERED_SCOPES * 3)})
    assert repeated == ("read:a:1",)
    exact = template.render({"kind": "a", "item": list(range(MAX_RENDERED_SCOPES))})
    assert len(exact) == MAX_RENDERED_SCOPES


@pytest.mark.parametrize("text", ["visit-77", "a", "P_1.v2@x+y", "x" * 128])
def test_identifiers_follow_the_safe_value_pattern(text: str) -> None:
    assert is_identifier(text)


@pytest.mark.parametrize(
    "text", ["", "..", ".x", "visit-77\u200b", "vi\u202esit", "a/b", "a\\b", "a b", "\u0430", "x" * 129, None, 7]
)
def test_anything_else_is_not_an_identifier(text: object) -> None:
    assert not is_identifier(text)


def test_plain_scopes_are_made_of_identifiers() -> None:
    assert is_plain_scope("read:records:P-1")
    assert is_plain_scope("read:records:*")
    for text in ("re\u0430d:records:x", "read:records:P\u200b1", "read:rec*:x", "read:records", "read::x", 3):
        assert not is_plain_scope(text), text
    assert is_valid_scope("re\u0430d:records:x")  # the general parser is wider; the broker stores plain only
