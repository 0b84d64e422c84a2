"""The planner: given a conversation and the tools on offer, the next assistant turn. No I/O, no randomness.

This is not a language model. It reads the latest user message, picks the first matching :class:`Rule` and
walks it like a small state machine over the turns since that message:

1. The rule's calls not yet made (all together: parallel tool calls; one per turn when the request turns
   parallel calls off).
2. Then follow-ups whose trigger tool has a result, skipping every tool already called for this user message.
3. Then a final answer composed from the results.

Step 2 is why a conversation always ends: each tool turn adds a tool name that can never be called again for
the same user message, rule sets are finite, and :attr:`RuleSet.max_tool_turns` is a backstop on top.

Tools not offered by the request are not called — unless the call is scripted misbehaviour, whose whole point is
to do what it should not. Ids are hashes of the conversation, so the same request gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._compose import final_answer, help_answer, json_fields
from ._conversation import AssistantTurn, Conversation, MadeCall, ToolOutput
from ._rules import MisbehaviourKind, Rule, RuleSet, ToolCallSpec
from ._template import MissingValue, render_value

__all__ = ["Decision", "PlannedCall", "Planner", "ToolOffer", "derive_id"]


@dataclass(frozen=True)
class ToolOffer:
    """What the request lets the assistant do with tools.

    Attributes:
        names: the function names offered in ``tools``.
        enabled: ``False`` when the request said ``tool_choice: "none"``; then nothing is called at all.
        parallel: ``False`` when the request said ``parallel_tool_calls: false``; then one call per turn.
    """

    names: frozenset[str] = frozenset()
    enabled: bool = True
    parallel: bool = True


@dataclass(frozen=True)
class PlannedCall:
    """A tool call the assistant makes in this turn.

    Attributes:
        call_id: the id results must refer to (``call_…``, derived from the conversation).
        name: the function name.
        arguments: the arguments as JSON text, as the wire carries them.
        misbehaviour: the scripted trick this call plays, for logs and tests; never sent on the wire.
    """

    call_id: str
    name: str
    arguments: str
    misbehaviour: MisbehaviourKind | None = None


@dataclass(frozen=True)
class Decision:
    """The next assistant turn: tool calls, or a final answer.

    Attributes:
        content: the answer text (``None`` when calling tools).
        calls: the tool calls (empty for an answer).
        rule: the name of the rule followed, ``None`` when none matched.
        seed: the conversation's fingerprint, from which response and item ids are derived.
    """

    content: str | None
    calls: tuple[PlannedCall, ...] = ()
    rule: str | None = None
    seed: str = ""

    @property
    def finish_reason(self) -> Literal["tool_calls", "stop"]:
        """OpenAI's ``finish_reason`` for this turn."""
        return "tool_calls" if self.calls else "stop"


def derive_id(prefix: str, seed: str, *parts: object) -> str:
    """A deterministic id: ``prefix`` + 24 hex characters of a hash of ``seed`` and ``parts``."""
    text = ":".join([seed, *(str(part) for part in parts)])
    return prefix + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _canonical(arguments: Any) -> str:
    return json.dumps(arguments, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def _made_key(call: MadeCall) -> tuple[str, str]:
    try:
        return call.name, _canonical(json.loads(call.arguments))
    except ValueError:
        return call.name, call.arguments


_Rendered = tuple[ToolCallSpec, dict[str, Any]]


class Planner:
    """Decides assistant turns from a :class:`RuleSet` by rules, not a language model.

    Immutable, so one instance serves every handler thread of the server.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def decide(self, conversation: Conversation, offer: ToolOffer) -> Decision:
        """The next assistant turn for ``conversation``."""
        seed = conversation.fingerprint()
        latest = conversation.latest_user()
        if latest is None:
            return Decision(help_answer(self.rules), seed=seed)
        start, user = latest
        later = conversation.entries[start + 1 :]
        made = [call for entry in later if isinstance(entry, AssistantTurn) for call in entry.calls]
        names = {call.call_id: call.name for call in made}
        results = [(names.get(entry.call_id, "tool"), entry.output) for entry in later if isinstance(entry, ToolOutput)]

        match = self.rules.first_match(user.text)
        if match is None:
            content = final_answer(None, {}, results) if results else help_answer(self.rules)
            return Decision(content, seed=seed)
        rule, values = match

        unavailable: list[str] = []
        tool_turns = sum(1 for entry in later if isinstance(entry, AssistantTurn) and entry.calls)
        if offer.enabled and tool_turns < self.rules.max_tool_turns:
            batch = self._next_batch(rule, values, made, results, offer, unavailable)
            if batch:
                if not offer.parallel:
                    batch = batch[:1]
                calls = tuple(
                    PlannedCall(
                        call_id=derive_id("call_", seed, index),
                        name=spec.tool,
                        arguments=json.dumps(arguments, ensure_ascii=False),
                        misbehaviour=None if spec.misbehave is None else spec.misbehave.kind,
                    )
                    for index, (spec, arguments) in enumerate(batch)
                )
                return Decision(None, calls, rule.name, seed)
        content = final_answer(
            rule,
            values,
            results,
            unavailable=tuple(dict.fromkeys(unavailable)),
            tools_disabled=not offer.enabled and not results and bool(rule.calls),
        )
        return Decision(content, rule=rule.name, seed=seed)

    def _next_batch(
        self,
        rule: Rule,
        values: Mapping[str, str],
        made: Sequence[MadeCall],
        results: Sequence[tuple[str, str]],
        offer: ToolOffer,
        unavailable: list[str],
    ) -> list[_Rendered]:
        made_keys = {_made_key(call) for call in made}
        pending = [
            (spec, arguments)
            for spec, arguments in self._render(rule.calls, values, offer, unavailable)
            if (spec.tool, _canonical(arguments)) not in made_keys
        ]
        if pending:
            return pending
        called = {call.name for call in made}
        batch: list[_Rendered] = []
        seen: set[tuple[str, str]] = set()
        for follow_up in rule.follow_ups:
            for name, output in results:
                if name != follow_up.after:
                    continue
                scope = {**values, **json_fields(output)}
                if follow_up.pattern is not None:
                    found = follow_up.pattern.search(output)
                    if found is None:
                        continue
                    scope.update({key: value for key, value in found.groupdict().items() if value is not None})
                for spec, arguments in self._render(follow_up.calls, scope, offer, unavailable):
                    key = (spec.tool, _canonical(arguments))
                    if spec.tool not in called and key not in seen:
                        seen.add(key)
                        batch.append((spec, arguments))
        return batch

    @staticmethod
    def _render(
        specs: Sequence[ToolCallSpec], values: Mapping[str, str], offer: ToolOffer, unavailable: list[str]
    ) -> list[_Rendered]:
        """Fill each call's arguments; drop calls to tools not offered (unless scripted) or with missing values."""
        rendered: list[_Rendered] = []
        for spec in specs:
            if spec.tool not in offer.names and spec.misbehave is None:
                unavailable.append(spec.tool)
                continue
            try:
                arguments: dict[str, Any] = render_value(dict(spec.arguments), values)
                if spec.misbehave is not None:
                    arguments = spec.misbehave.tamper(arguments, values)
            except MissingValue:
                continue  # never invent an argument
            rendered.append((spec, arguments))
        return rendered
