"""Property tests of the coverage laws and of safe template rendering.

Authority may only narrow. These laws are what the guard and the broker rely on when they say "requested ⊆ held",
so each is checked over generated scopes rather than a handful of examples.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agentwrit_tools.errors import ScopeError, UnsafeArgumentError
from agentwrit_tools.scopes import (
    SAFE_VALUE_PATTERN,
    WILDCARD,
    Scope,
    ScopeTemplate,
    covers,
    covers_all,
    is_valid_scope,
    parse_scope,
    uncovered,
)

PROPERTY = settings(max_examples=200, deadline=None)

# Characters a scope part may hold: anything but the separator, the wildcard, whitespace, control, format and
# surrogate characters.
_PART_CHARS = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Z"), blacklist_characters=":*")
_ANY_PART = st.text(_PART_CHARS, min_size=1, max_size=12).filter(lambda s: not any(c.isspace() for c in s))
# Small pools make equal parts (and therefore coverage) frequent enough for the laws to be exercised.
_PART = st.one_of(st.sampled_from(["read", "write", "data", "x", "y"]), _ANY_PART)
_IDENTIFIER = st.one_of(st.just(WILDCARD), _PART)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    return Scope(draw(_PART), draw(_PART), draw(_IDENTIFIER))


# A tiny universe where every relation between three scopes actually occurs.
_SMALL_SCOPES = st.builds(
    Scope,
    st.sampled_from(["read", "write"]),
    st.sampled_from(["data"]),
    st.sampled_from([WILDCARD, "x", "y"]),
)
_SOME_SCOPES = st.one_of(_SMALL_SCOPES, scopes())


@PROPERTY
@given(scopes())
def test_generated_scopes_round_trip_through_text(scope: Scope) -> None:
    assert parse_scope(str(scope)) == scope


@PROPERTY
@given(_SOME_SCOPES)
def test_coverage_is_reflexive(scope: Scope) -> None:
    assert covers(scope, scope)
    assert covers(str(scope), str(scope))
    assert covers_all([scope], [scope])


@PROPERTY
@given(_SOME_SCOPES, _SOME_SCOPES, _SOME_SCOPES)
def test_coverage_is_transitive(a: Scope, b: Scope, c: Scope) -> None:
    if covers(a, b) and covers(b, c):
        assert covers(a, c)


def test_coverage_laws_hold_exhaustively_on_a_small_universe() -> None:
    # Random triples rarely line up as x <- * <- y; enumerate them all so the laws are really exercised.
    universe = [Scope(a, r, i) for a in ("read", "write") for r in ("data", "logs") for i in (WILDCARD, "x", "y")]
    for a in universe:
        assert covers(a, a)
        for b in universe:
            if covers(a, b) and covers(b, a):
                assert a == b
            if covers(a, b) and b.is_wildcard:
                assert a.is_wildcard
            for c in universe:
                if covers(a, b) and covers(b, c):
                    assert covers(a, c)


@PROPERTY
@given(_SMALL_SCOPES, _SMALL_SCOPES)
def test_coverage_is_antisymmetric(a: Scope, b: Scope) -> None:
    if covers(a, b) and covers(b, a):
        assert a == b


@PROPERTY
@given(_SOME_SCOPES, _SOME_SCOPES)
def test_a_wildcard_is_only_covered_by_a_wildcard(held: Scope, requested: Scope) -> None:
    if covers(held, requested) and requested.is_wildcard:
        assert held.is_wildcard


@PROPERTY
@given(_SOME_SCOPES, _SOME_SCOPES)
def test_coverage_never_crosses_action_or_resource(held: Scope, requested: Scope) -> None:
    if covers(held, requested):
        assert (held.action, held.resource) == (requested.action, requested.resource)
        assert held.identifier in (WILDCARD, requested.identifier)


@PROPERTY
@given(scopes(), st.sampled_from(["action", "resource", "identifier"]), st.integers(min_value=0), st.data())
def test_a_wildcard_anywhere_but_the_whole_identifier_fails_to_parse(
    scope: Scope, where: str, index: int, data: st.DataObject
) -> None:
    part = getattr(scope, where)
    if part == WILDCARD:
        part = data.draw(_ANY_PART)
    position = index % (len(part) + 1)
    starred = part[:position] + WILDCARD + part[position:]
    # For the identifier the star sits next to a non-empty text, so it is never the whole identifier.
    parts = {"action": scope.action, "resource": scope.resource, "identifier": scope.identifier}
    parts[where] = starred
    text = f"{parts['action']}:{parts['resource']}:{parts['identifier']}"
    assert not is_valid_scope(text)


@PROPERTY
@given(
    scopes(),
    st.sampled_from(["action", "resource", "identifier"]),
    st.integers(min_value=0),
    st.one_of(st.characters(categories=("Cc", "Cf", "Cs", "Z")), st.sampled_from(["\x85", "\x9b", "\u200b"])),
)
def test_an_invisible_or_control_character_anywhere_fails_to_parse(
    scope: Scope, where: str, index: int, char: str
) -> None:
    parts = {"action": scope.action, "resource": scope.resource, "identifier": scope.identifier}
    part = parts[where]
    position = index % (len(part) + 1)
    parts[where] = part[:position] + char + part[position:]
    assert not is_valid_scope(f"{parts['action']}:{parts['resource']}:{parts['identifier']}")


@PROPERTY
@given(st.lists(_SOME_SCOPES, max_size=6), _SOME_SCOPES)
def test_a_list_covers_one_scope_iff_some_member_does(held: list[Scope], requested: Scope) -> None:
    assert covers_all(held, [requested]) == any(covers(h, requested) for h in held)


@PROPERTY
@given(st.lists(_SOME_SCOPES, max_size=6), st.lists(_SOME_SCOPES, max_size=6))
def test_a_list_covers_a_list_iff_it_covers_each_member(held: list[Scope], requested: list[Scope]) -> None:
    assert covers_all(held, requested) == all(covers_all(held, [r]) for r in requested)
    missing = uncovered(held, requested)
    assert missing == [str(r) for r in requested if not covers_all(held, [r])]
    assert covers_all(held, requested) == (missing == [])


@PROPERTY
@given(st.lists(_SOME_SCOPES, max_size=6), st.lists(_SOME_SCOPES, max_size=6), st.lists(_SOME_SCOPES, max_size=4))
def test_asking_for_more_never_turns_a_refusal_into_coverage(
    held: list[Scope], requested: list[Scope], extra: list[Scope]
) -> None:
    if not covers_all(held, requested):
        assert not covers_all(held, requested + extra)
        assert not covers_all(held, extra + requested)


@PROPERTY
@given(st.lists(_SOME_SCOPES, max_size=6), st.lists(_SOME_SCOPES, min_size=1, max_size=6))
def test_holding_less_never_covers_more(held: list[Scope], requested: list[Scope]) -> None:
    if covers_all(held[1:], requested):
        assert covers_all(held, requested)


@PROPERTY
@given(st.lists(_SOME_SCOPES, max_size=6), _SOME_SCOPES)
def test_a_list_never_covers_a_wildcard_it_does_not_hold(held: list[Scope], requested: Scope) -> None:
    assume(requested.is_wildcard)
    if covers_all(held, [requested]):
        assert requested in held


# ---------------------------------------------------------------------------------------------------------------
# Rendering never widens.

_HOSTILE = [
    "*",
    ":",
    "c-1:*",
    "a:b",
    " ",
    "a b",
    "x\n",
    "\t",
    "\x00",
    "\uff1a",  # FULLWIDTH COLON
    "P\uff1a1",
    "\u2217",  # ASTERISK OPERATOR
    "\uff0a",  # FULLWIDTH ASTERISK
    "\ufe61",  # SMALL ASTERISK
    "%2A",
    "x%3A*",
    "../x",
    "..",
    "{x}",
    "",
    "x" * 10_000,
    "x" * 129,
]
_VALUES = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="ascii"), max_size=40),
    st.sampled_from(_HOSTILE),
    st.from_regex(SAFE_VALUE_PATTERN, fullmatch=True),
    st.builds(
        lambda a, b, c: a + b + c,
        st.from_regex(SAFE_VALUE_PATTERN, fullmatch=True),
        st.sampled_from(_HOSTILE),
        st.text(max_size=3),
    ),
    st.text(min_size=120, max_size=140, alphabet="xy*:"),
)
_TEMPLATE_PART = st.one_of(
    st.sampled_from(["read", "records", "write", "billing"]),
    _ANY_PART.filter(lambda s: "{" not in s and "}" not in s),
)
_AFFIX = st.one_of(st.just(""), st.from_regex(r"[a-z0-9-]{1,5}", fullmatch=True))


def _assert_not_wider(action: str, resource: str, prefix: str, suffix: str, value: str, rendered: str) -> None:
    scope = parse_scope(rendered)
    assert scope.action == action
    assert scope.resource == resource
    assert scope.identifier == f"{prefix}{value}{suffix}"
    assert not scope.is_wildcard
    assert re.fullmatch(SAFE_VALUE_PATTERN, value)
    assert covers(f"{action}:{resource}:{WILDCARD}", scope)


@PROPERTY
@given(_TEMPLATE_PART, _TEMPLATE_PART, _AFFIX, _AFFIX, _VALUES)
def test_rendering_never_produces_a_scope_wider_than_the_template(
    action: str, resource: str, prefix: str, suffix: str, value: str
) -> None:
    template = ScopeTemplate.compile(f"{action}:{resource}:{prefix}{{arg}}{suffix}")
    if not re.fullmatch(SAFE_VALUE_PATTERN, value):
        with pytest.raises(UnsafeArgumentError) as caught:
            template.render({"arg": value})
        assert caught.value.argument == "arg"
        return
    rendered = template.render({"arg": value})
    assert len(rendered) == 1
    _assert_not_wider(action, resource, prefix, suffix, value, rendered[0])


@PROPERTY
@given(_TEMPLATE_PART, _TEMPLATE_PART, st.lists(_VALUES, min_size=1, max_size=5))
def test_rendering_a_list_never_widens_any_element(action: str, resource: str, values: list[str]) -> None:
    template = ScopeTemplate.compile(f"{action}:{resource}:{{arg}}")
    if not all(re.fullmatch(SAFE_VALUE_PATTERN, v) for v in values):
        with pytest.raises(UnsafeArgumentError):
            template.render({"arg": values})
        return
    rendered = template.render({"arg": values})
    assert list(rendered) == list(dict.fromkeys(f"{action}:{resource}:{v}" for v in values))
    for value, scope in zip(dict.fromkeys(values), rendered, strict=True):
        _assert_not_wider(action, resource, "", "", value, scope)


@PROPERTY
@given(st.integers(min_value=-(10**200), max_value=10**200))
def test_rendering_integers_never_widens(number: int) -> None:
    template = ScopeTemplate.compile("read:records:{arg}")
    if number < 0 or len(str(number)) > 128:
        with pytest.raises(UnsafeArgumentError):
            template.render({"arg": number})
        return
    rendered = template.render({"arg": number})
    assert rendered == (f"read:records:{number}",)
    assert covers("read:records:*", rendered[0])


@PROPERTY
@given(st.text(max_size=30))
def test_compiling_arbitrary_text_either_fails_cleanly_or_yields_a_valid_shape(text: str) -> None:
    try:
        template = ScopeTemplate.compile(text)
    except ScopeError:
        return
    arguments = dict.fromkeys(template.placeholders, "v")
    for rendered in template.render(arguments):
        assert is_valid_scope(rendered)
