"""The planner without sockets: matching, extraction, parallel and follow-up calls, misbehaviour, termination."""

from __future__ import annotations

import json

import pytest

from agentwrit_tools.offline import (
    DEFAULT_INJECTION_SUFFIX,
    MARKER,
    AssistantTurn,
    Conversation,
    Decision,
    MadeCall,
    Planner,
    ToolOffer,
    ToolOutput,
    UserMessage,
    parse_rules,
)

RULES = parse_rules(
    {
        "rules": [
            {
                "name": "patient-record",
                "description": "show a patient's record",
                "when": r"(?i)record.*\b(?P<patient_id>P-\d+)",
                "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}", "fields": "summary"}}],
                "follow_ups": [
                    {
                        "after": "get_record",
                        "when": r'"status":\s*"ok"',
                        "calls": [{"tool": "get_physician", "arguments": {"physician_id": "{physician_id}"}}],
                    }
                ],
            },
            {
                "name": "labs-and-record",
                "when": r"(?i)everything.*\b(?P<patient_id>P-\d+)",
                "calls": [
                    {"tool": "get_record", "arguments": {"patient_id": "{patient_id}"}},
                    {"tool": "get_labs", "arguments": {"patient_id": "{patient_id}", "limit": 5}},
                ],
                "answer": "Record: {get_record} / labs: {get_labs} / for {patient_id} / {missing}",
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
            {
                "name": "greedy",
                "when": r"(?i)all records",
                "calls": [
                    {
                        "tool": "get_record",
                        "arguments": {"patient_id": "P-1"},
                        "misbehave": {"kind": "wildcard", "argument": "patient_id"},
                    }
                ],
            },
            {
                "name": "injector",
                "when": r"(?i)inject (?P<patient_id>P-\d+)",
                "calls": [
                    {
                        "tool": "get_record",
                        "arguments": {"patient_id": "{patient_id}"},
                        "misbehave": {"kind": "injection", "argument": "patient_id"},
                    },
                    {
                        "tool": "get_labs",
                        "arguments": {"patient_id": "{patient_id}"},
                        "misbehave": {"kind": "injection", "argument": "patient_id", "value": "{patient_id}' OR 1=1"},
                    },
                ],
            },
            {
                "name": "wrecker",
                "when": r"(?i)clean up (?P<patient_id>P-\d+)",
                "calls": [
                    {
                        "tool": "delete_record",
                        "arguments": {"patient_id": "{patient_id}"},
                        "misbehave": {"kind": "dangerous_tool"},
                    },
                    {"tool": "export_all", "misbehave": {"kind": "unoffered_tool"}},
                    {"tool": "shell", "arguments": {"cmd": "rm -rf /"}},
                ],
            },
            {
                "name": "search-loop",
                "when": r"(?i)search (?P<q>\w+)",
                "calls": [{"tool": "search", "arguments": {"q": "{q}"}}],
                "follow_ups": [
                    {"after": "search", "calls": [{"tool": "search", "arguments": {"q": "{next}"}}]},
                    {"after": "search", "calls": [{"tool": "fetch", "arguments": {"id": "{next}"}}]},
                    {"after": "fetch", "calls": [{"tool": "summarise", "arguments": {"id": "{id}"}}]},
                ],
            },
            {"name": "hello", "when": r"(?i)^\s*(hi|hello)\b", "answer": "Hello! I only know canned rules."},
        ]
    }
)
TOOLS = frozenset({"get_record", "get_labs", "get_physician", "delete_record", "search", "fetch", "summarise"})
OFFER = ToolOffer(TOOLS)
PLANNER = Planner(RULES)


def ask(text: str, *earlier: UserMessage | AssistantTurn | ToolOutput) -> Conversation:
    return Conversation((*earlier, UserMessage(text)))


def answer(conversation: Conversation, decision: Decision, *outputs: str) -> Conversation:
    """Echo the decision as an assistant turn and append one output per call, as a tool-call loop does."""
    made = tuple(MadeCall(call.call_id, call.name, call.arguments) for call in decision.calls)
    results = tuple(ToolOutput(call.call_id, output) for call, output in zip(decision.calls, outputs, strict=True))
    return Conversation((*conversation.entries, AssistantTurn("", made), *results))


def calls(decision: Decision) -> list[tuple[str, dict[str, object]]]:
    return [(call.name, json.loads(call.arguments)) for call in decision.calls]


def test_a_matching_rule_calls_its_tool_with_extracted_and_constant_arguments() -> None:
    decision = PLANNER.decide(ask("Show me the record for P-1042 please"), OFFER)
    assert decision.finish_reason == "tool_calls"
    assert decision.content is None
    assert decision.rule == "patient-record"
    assert calls(decision) == [("get_record", {"patient_id": "P-1042", "fields": "summary"})]
    assert decision.calls[0].call_id.startswith("call_")
    assert decision.calls[0].misbehaviour is None


def test_several_calls_in_one_turn_are_parallel_tool_calls_with_distinct_ids() -> None:
    decision = PLANNER.decide(ask("everything about P-7"), OFFER)
    assert calls(decision) == [
        ("get_record", {"patient_id": "P-7"}),
        ("get_labs", {"patient_id": "P-7", "limit": 5}),
    ]
    assert len({call.call_id for call in decision.calls}) == 2


def test_without_parallel_calls_the_batch_is_issued_one_per_turn() -> None:
    sequential = ToolOffer(TOOLS, parallel=False)
    conversation = ask("everything about P-7")
    first = PLANNER.decide(conversation, sequential)
    assert calls(first) == [("get_record", {"patient_id": "P-7"})]
    conversation = answer(conversation, first, "R")
    second = PLANNER.decide(conversation, sequential)
    assert calls(second) == [("get_labs", {"patient_id": "P-7", "limit": 5})]
    final = PLANNER.decide(answer(conversation, second, "L"), sequential)
    assert final.content == f"{MARKER} Record: R / labs: L / for P-7 / (not available)"


def test_after_results_the_answer_quotes_them_and_is_labelled() -> None:
    conversation = ask("everything about P-7")
    decision = PLANNER.decide(conversation, OFFER)
    final = PLANNER.decide(
        answer(conversation, decision, '{"name": "Ada"}', "access denied: needs read:labs:P-7"), OFFER
    )
    assert final.finish_reason == "stop"
    assert final.calls == ()
    assert final.content is not None
    assert final.content.startswith(MARKER)
    assert '{"name": "Ada"}' in final.content
    assert "access denied: needs read:labs:P-7" in final.content


def test_the_default_answer_lists_every_output() -> None:
    conversation = ask("record of P-1")
    decision = PLANNER.decide(conversation, OFFER)
    final = PLANNER.decide(answer(conversation, decision, '{"status": "denied"}'), OFFER)
    assert final.content == (
        f'{MARKER} Here is what the tools returned for rule \'patient-record\':\n- get_record: {{"status": "denied"}}'
    )


def test_a_follow_up_chains_on_a_field_of_the_result() -> None:
    conversation = ask("record of P-1")
    first = PLANNER.decide(conversation, OFFER)
    conversation = answer(conversation, first, '{"status": "ok", "physician_id": "D-9"}')
    second = PLANNER.decide(conversation, OFFER)
    assert calls(second) == [("get_physician", {"physician_id": "D-9"})]
    final = PLANNER.decide(answer(conversation, second, "Dr. Quinn"), OFFER)
    assert final.content is not None
    assert "get_physician: Dr. Quinn" in final.content


def test_a_follow_up_whose_pattern_does_not_match_the_result_does_not_fire() -> None:
    conversation = ask("record of P-1")
    first = PLANNER.decide(conversation, OFFER)
    final = PLANNER.decide(answer(conversation, first, '{"status": "denied", "physician_id": "D-9"}'), OFFER)
    assert final.finish_reason == "stop"


def test_a_follow_up_with_a_value_the_result_lacks_is_not_invented() -> None:
    conversation = ask("record of P-1")
    first = PLANNER.decide(conversation, OFFER)
    final = PLANNER.decide(answer(conversation, first, '{"status": "ok"}'), OFFER)
    assert final.finish_reason == "stop"


def test_a_tool_is_never_called_twice_for_one_user_message_so_chains_end() -> None:
    conversation = ask("search cats")
    turns = []
    outputs = iter(['{"next": "a1"}', '{"next": "a2", "id": "x"}', "summary", "unused"])
    decision = PLANNER.decide(conversation, OFFER)
    while decision.calls:
        turns.append(calls(decision))
        conversation = answer(conversation, decision, *[next(outputs) for _ in decision.calls])
        decision = PLANNER.decide(conversation, OFFER)
    assert turns == [
        [("search", {"q": "cats"})],
        [("fetch", {"id": "a1"})],  # the follow-up calling `search` again is skipped
        [("summarise", {"id": "x"})],
    ]
    assert decision.content is not None


def test_max_tool_turns_is_a_backstop() -> None:
    limited = Planner(
        parse_rules(
            {
                "max_tool_turns": 1,
                "rules": [
                    {
                        "name": "chain",
                        "when": "go",
                        "calls": [{"tool": "a"}],
                        "follow_ups": [{"after": "a", "calls": [{"tool": "b"}]}],
                    }
                ],
            }
        )
    )
    offer = ToolOffer(frozenset({"a", "b"}))
    conversation = ask("go")
    first = limited.decide(conversation, offer)
    assert [call.name for call in first.calls] == ["a"]
    assert limited.decide(answer(conversation, first, "done"), offer).finish_reason == "stop"


def test_only_the_latest_user_message_counts() -> None:
    earlier_question = ask("record of P-1")
    first = PLANNER.decide(earlier_question, OFFER)
    history = answer(earlier_question, first, '{"status": "denied"}')
    history = Conversation((*history.entries, AssistantTurn("done")))
    decision = PLANNER.decide(Conversation((*history.entries, UserMessage("record of P-2"))), OFFER)
    assert calls(decision) == [("get_record", {"patient_id": "P-2", "fields": "summary"})]
    assert decision.calls[0].call_id != first.calls[0].call_id


def test_other_subject_asks_for_someone_else() -> None:
    decision = PLANNER.decide(ask("labs for P-1042"), OFFER)
    assert calls(decision) == [("get_labs", {"patient_id": "P-0002"})]
    assert decision.calls[0].misbehaviour == "other_subject"


def test_wildcard_replaces_the_argument_with_a_star() -> None:
    decision = PLANNER.decide(ask("show all records"), OFFER)
    assert calls(decision) == [("get_record", {"patient_id": "*"})]
    assert decision.calls[0].misbehaviour == "wildcard"


def test_injection_uses_the_default_payload_or_the_scripted_one() -> None:
    decision = PLANNER.decide(ask("inject P-5"), OFFER)
    assert calls(decision) == [
        ("get_record", {"patient_id": "P-5" + DEFAULT_INJECTION_SUFFIX}),
        ("get_labs", {"patient_id": "P-5' OR 1=1"}),
    ]
    assert DEFAULT_INJECTION_SUFFIX.startswith(":*")
    assert {call.misbehaviour for call in decision.calls} == {"injection"}


def test_scripted_bad_tools_are_called_even_unoffered_while_honest_unoffered_calls_are_not() -> None:
    decision = PLANNER.decide(ask("please clean up P-3"), OFFER)
    assert calls(decision) == [("delete_record", {"patient_id": "P-3"}), ("export_all", {})]
    assert [call.misbehaviour for call in decision.calls] == ["dangerous_tool", "unoffered_tool"]
    assert "shell" not in TOOLS


def test_an_honest_call_to_an_unoffered_tool_is_skipped_and_the_answer_says_so() -> None:
    decision = PLANNER.decide(ask("record of P-1"), ToolOffer(frozenset({"get_labs"})))
    assert decision.calls == ()
    assert decision.content is not None
    assert decision.content.startswith(MARKER)
    assert "not offered in this request: get_record" in decision.content


def test_tool_choice_none_disables_every_call_even_scripted_ones() -> None:
    for text in ("record of P-1", "please clean up P-3"):
        decision = PLANNER.decide(ask(text), ToolOffer(TOOLS, enabled=False))
        assert decision.calls == ()
        assert decision.content is not None
        assert "tool use is disabled" in decision.content


def test_an_answer_only_rule_answers_with_its_template() -> None:
    decision = PLANNER.decide(ask("hello there"), OFFER)
    assert decision == Decision(f"{MARKER} Hello! I only know canned rules.", rule="hello", seed=decision.seed)


def test_no_matching_rule_gives_a_help_answer_naming_what_it_can_do() -> None:
    decision = PLANNER.decide(ask("what's the weather?"), OFFER)
    assert decision.calls == ()
    assert decision.rule is None
    assert decision.content is not None
    assert decision.content.startswith(MARKER)
    assert "not a language model" in decision.content
    assert "show a patient's record" in decision.content
    assert "follow rule 'nosy'" in decision.content


def test_no_user_message_at_all_also_gets_the_help_answer() -> None:
    decision = PLANNER.decide(Conversation(), OFFER)
    assert decision.content is not None
    assert "not a language model" in decision.content


def test_results_without_a_matching_rule_are_still_summarised() -> None:
    made = MadeCall("call_1", "get_record", "{}")
    conversation = Conversation((UserMessage("??"), AssistantTurn("", (made,)), ToolOutput("call_1", "R")))
    decision = PLANNER.decide(conversation, OFFER)
    assert decision.content == f"{MARKER} Here is what the tools returned for this conversation:\n- get_record: R"


def test_reformatted_arguments_still_count_as_made() -> None:
    conversation = ask("record of P-1")
    first = PLANNER.decide(conversation, OFFER)
    spaced = MadeCall(first.calls[0].call_id, "get_record", '{ "fields" : "summary", "patient_id" : "P-1" }')
    replayed = Conversation(
        (*conversation.entries, AssistantTurn("", (spaced,)), ToolOutput(spaced.call_id, '{"status": "x"}'))
    )
    assert PLANNER.decide(replayed, OFFER).finish_reason == "stop"


def test_the_same_conversation_always_gets_the_same_decision() -> None:
    conversation = ask("everything about P-7")
    first = PLANNER.decide(conversation, OFFER)
    again = Planner(RULES).decide(Conversation(tuple(conversation.entries)), OFFER)
    assert first == again
    other = PLANNER.decide(ask("everything about P-8"), OFFER)
    assert {call.call_id for call in first.calls}.isdisjoint(call.call_id for call in other.calls)


@pytest.mark.parametrize("text", ["", "   ", "\x00", "record of P-" + "9" * 10_000])
def test_odd_user_text_never_raises(text: str) -> None:
    decision = PLANNER.decide(ask(text), OFFER)
    assert decision.content is not None or decision.calls
