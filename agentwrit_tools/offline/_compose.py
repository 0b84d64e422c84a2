"""The stand-in's final answers, built from tool outputs by template, never invented.

A demo must show what the tools (and the guard) actually returned — including "access denied" — so the default
answer quotes each output. Outputs are trimmed to a fixed length so a huge result cannot flood a transcript,
and the trimming is deterministic like everything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ._labels import labelled
from ._rules import Rule, RuleSet
from ._template import render

__all__ = ["MAX_QUOTED", "NOT_AVAILABLE", "final_answer", "help_answer", "json_fields"]

MAX_QUOTED = 2000
"""Characters of one tool output quoted in an answer."""

NOT_AVAILABLE = "(not available)"
"""What an answer template prints for a placeholder with no value (a tool not called, a field not returned)."""


def _quote(output: str) -> str:
    return output if len(output) <= MAX_QUOTED else output[:MAX_QUOTED] + "…"


def json_fields(output: str) -> dict[str, str]:
    """Top-level scalar fields of a tool output that is a JSON object, as strings; ``{}`` otherwise.

    Lets a rule chain on, or answer with, ``{customer_id}`` from ``{"customer_id": "C-7", ...}``.
    """
    try:
        data = json.loads(output)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    fields: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            fields[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            fields[key] = str(value)
    return fields


def help_answer(rules: RuleSet) -> str:
    """The answer when no rule matches: say plainly what this program is and what it can do."""
    if rules.help is not None:
        return labelled(rules.help)
    if not rules.rules:
        return labelled("I am a rule-based stand-in, not a language model, and I have no rules loaded.")
    abilities = "; ".join(rule.description or f"follow rule {rule.name!r}" for rule in rules.rules)
    return labelled(
        f"I am a rule-based stand-in, not a language model, and none of my rules matches that message. I can: "
        f"{abilities}."
    )


def final_answer(
    rule: Rule | None,
    values: Mapping[str, str],
    results: Sequence[tuple[str, str]],
    *,
    unavailable: Sequence[str] = (),
    tools_disabled: bool = False,
) -> str:
    """The closing answer of a user turn.

    Args:
        rule: the matching rule; ``None`` when tool results came back but no rule matches the user text.
        values: the rule's values (named groups, follow-up values).
        results: ``(tool name, output)`` in the order the results came back.
        unavailable: tools the rule wanted but the request did not offer.
        tools_disabled: the request said ``tool_choice: "none"``.
    """
    note = ""
    if tools_disabled:
        note = " (tool use is disabled for this request)"
    elif unavailable:
        note = f" (not offered in this request: {', '.join(unavailable)})"
    if rule is not None and rule.answer is not None:
        variables: dict[str, str] = {}
        for _, output in results:
            variables.update(json_fields(output))
        variables.update(values)
        variables.update({name: _quote(output) for name, output in results})
        variables["results"] = "\n".join(f"{name}: {_quote(output)}" for name, output in results)
        return labelled(render(rule.answer, variables, missing=lambda _: NOT_AVAILABLE) + note)
    subject = f"rule {rule.name!r}" if rule is not None else "this conversation"
    if results:
        lines = "\n".join(f"- {name}: {_quote(output)}" for name, output in results)
        return labelled(f"Here is what the tools returned for {subject}:\n{lines}{note}")
    if rule is not None and rule.calls:
        wanted = ", ".join(dict.fromkeys(call.tool for call in rule.calls))
        return labelled(f"{subject.capitalize()} would call {wanted}, but no call was made{note}.")
    return labelled(f"{subject.capitalize()} matched; it has nothing to call{note}.")
