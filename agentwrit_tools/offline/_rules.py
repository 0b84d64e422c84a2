"""The rules a stand-in model follows: what to call for which user text, and how to misbehave on purpose.

A :class:`Rule` matches the latest user message with a regular expression; its named groups become the values
of ``{name}`` placeholders in tool-call arguments and in the final answer. Its :class:`ToolCallSpec` entries are
issued together (parallel tool calls); a :class:`FollowUp` issues more calls once a given tool's result is back.

Misbehaviour is part of the rules, not an accident: a demo that shows the guard refusing a model asking for
another patient, a wildcard, an injected scope or a dangerous tool needs a model that does exactly that, every
time. A :class:`Misbehaviour` on a call says which trick it plays; such a call is issued even when the request
did not offer the tool, because a misbehaving model does not care what it was offered.

Everything is a frozen dataclass validated on construction, so a typo in a rule fails at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict

from ._errors import RulesError
from ._template import placeholders, placeholders_in_value, render

__all__ = [
    "DEFAULT_INJECTION_SUFFIX",
    "FollowUp",
    "Misbehaviour",
    "MisbehaviourKind",
    "Rule",
    "RuleSet",
    "ToolCallSpec",
]

MisbehaviourKind = Literal["other_subject", "wildcard", "injection", "dangerous_tool", "unoffered_tool"]

# Appended to the honest value when an injection rule gives no payload of its own: a scope separator, a wildcard
# and whitespace, each of which a scope template must refuse.
DEFAULT_INJECTION_SUFFIX = ":* ignore previous instructions"

_ARGUMENT_KINDS = frozenset({"other_subject", "wildcard", "injection"})
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FORBID_EXTRA: ConfigDict = ConfigDict(extra="forbid")


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RulesError(f"invalid regular expression {pattern!r}: {exc.msg}") from None


def _check_tool_name(name: str) -> None:
    if not _TOOL_NAME.fullmatch(name):
        raise RulesError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' (OpenAI's function names)")


@dataclass(frozen=True)
class Misbehaviour:
    """A deliberate trick a call plays, so a demo can show the guard refusing it.

    Attributes:
        kind: ``other_subject`` puts ``value`` (another customer or patient) into ``argument``; ``wildcard``
            puts ``*`` there; ``injection`` puts an injection string there (``value``, or the honest value
            followed by :data:`DEFAULT_INJECTION_SUFFIX`); ``dangerous_tool`` and ``unoffered_tool`` only label
            the call — the tool itself is the trick — and let it through even when the tool was not offered.
        argument: the argument to tamper with (argument kinds only).
        value: the replacement, a template like any argument (required for ``other_subject``).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    kind: MisbehaviourKind
    argument: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if self.kind in _ARGUMENT_KINDS:
            if not self.argument:
                raise RulesError(f"misbehaviour {self.kind!r} needs the 'argument' to tamper with")
            if self.kind == "other_subject" and self.value is None:
                raise RulesError("misbehaviour 'other_subject' needs the 'value' to ask for instead")
        elif self.argument is not None or self.value is not None:
            raise RulesError(f"misbehaviour {self.kind!r} takes no 'argument' or 'value': the tool is the trick")

    def tamper(self, arguments: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
        """The arguments with the trick applied (a new dict); raises ``MissingValue`` like any template."""
        if self.argument is None:
            return arguments
        honest = arguments.get(self.argument)
        if self.value is not None:
            replacement = render(self.value, values)
        elif self.kind == "wildcard":
            replacement = "*"
        else:
            replacement = (honest if isinstance(honest, str) else "") + DEFAULT_INJECTION_SUFFIX
        return {**arguments, self.argument: replacement}


@dataclass(frozen=True)
class ToolCallSpec:
    """One tool call a rule makes.

    Attributes:
        tool: the function name to call.
        arguments: the JSON arguments; strings may hold ``{name}`` placeholders, other values are constants.
        misbehave: the trick this call plays, if any.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    misbehave: Misbehaviour | None = None

    def __post_init__(self) -> None:
        _check_tool_name(self.tool)
        if not isinstance(self.arguments, Mapping):
            raise RulesError("'arguments' must be an object")
        object.__setattr__(self, "arguments", MappingProxyType(dict(self.arguments)))

    @property
    def needs(self) -> tuple[str, ...]:
        """Placeholder names the call needs filled (arguments and misbehaviour value)."""
        names = dict.fromkeys(placeholders_in_value(dict(self.arguments)))
        if self.misbehave is not None and self.misbehave.value is not None:
            names.update(dict.fromkeys(placeholders(self.misbehave.value)))
        return tuple(names)


@dataclass(frozen=True)
class FollowUp:
    """Calls to make once a tool's result is back, chaining on what it returned.

    Attributes:
        after: the tool whose result triggers this.
        calls: the calls to make; placeholders may use the rule's groups, the top-level fields of the result
            when it is a JSON object, and the named groups of ``when``.
        when: an optional regular expression the result text must match (``re.search``); use it to chain only on
            success, since a refused call comes back as a result too.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    after: str
    calls: tuple[ToolCallSpec, ...]
    when: str | None = None

    def __post_init__(self) -> None:
        _check_tool_name(self.after)
        object.__setattr__(self, "calls", tuple(self.calls))
        if not self.calls:
            raise RulesError("a follow-up needs at least one call")
        if self.when is not None:
            _compile(self.when)

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """The compiled ``when``."""
        return None if self.when is None else _compile(self.when)


@dataclass(frozen=True)
class Rule:
    """An intent: a pattern on the latest user text, the calls it leads to, and how to answer afterwards.

    Attributes:
        name: unique within a rule set; shows up in logs and in the default answer.
        when: a regular expression searched in the latest user message; named groups become values.
        calls: calls issued together in the first assistant turn; none makes an answer-only rule.
        follow_ups: calls issued after earlier results come back.
        answer: the final answer's template: the rule's values, each called tool's output by tool name
            (``{get_record}``) and ``{results}`` (every output, one per line). A sane summary when omitted.
        description: what the rule does, for the answer the stand-in gives when nothing matches.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    name: str
    when: str
    calls: tuple[ToolCallSpec, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    answer: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise RulesError("a rule needs a non-empty 'name'")
        object.__setattr__(self, "calls", tuple(self.calls))
        object.__setattr__(self, "follow_ups", tuple(self.follow_ups))
        groups = set(_compile(self.when).groupindex)
        for call in self.calls:
            unknown = [name for name in call.needs if name not in groups]
            if unknown:
                raise RulesError(
                    f"call to {call.tool!r} uses {{{unknown[0]}}}, which is not a named group of 'when' "
                    f"(groups: {', '.join(sorted(groups)) or 'none'})"
                )

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The compiled ``when``."""
        return _compile(self.when)

    def match(self, text: str) -> dict[str, str] | None:
        """The named groups that took part in a match of ``text``, or ``None`` when the rule does not apply."""
        found = self.pattern.search(text)
        if found is None:
            return None
        return {name: value for name, value in found.groupdict().items() if value is not None}


@dataclass(frozen=True)
class RuleSet:
    """Rules tried in order; the first whose ``when`` matches the latest user message wins.

    Attributes:
        rules: the rules, in priority order.
        max_tool_turns: a backstop: after this many assistant turns with tool calls for one user message the
            stand-in answers instead of calling, whatever the rules say.
        help: the answer when no rule matches; by default it lists the rules' descriptions.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    rules: tuple[Rule, ...] = ()
    max_tool_turns: int = 8
    help: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        if self.max_tool_turns < 1:
            raise RulesError("'max_tool_turns' must be at least 1")
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise RulesError(f"two rules are named {rule.name!r}; names must be unique")
            seen.add(rule.name)

    def first_match(self, text: str) -> tuple[Rule, dict[str, str]] | None:
        """The winning rule for ``text`` and its values."""
        for rule in self.rules:
            values = rule.match(text)
            if values is not None:
                return rule, values
        return None
