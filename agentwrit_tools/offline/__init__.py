"""The offline stand-in model: a deterministic, rule-based program that speaks the OpenAI API. Not a language model.

Demos, notebooks and tests must run with no network and no API key, through the same code path a real model
would use. So instead of mocking the ``openai`` client, this package serves the OpenAI wire protocol
(chat completions, streaming, the Responses API) on a loopback port and answers from rules: regular expressions
over the latest user message pick tool calls, argument values come from named groups, follow-up calls chain on
tool results, and scripted misbehaviour (another patient, a wildcard, an injection, a dangerous or unoffered
tool) lets a demo show the guard refusing a model that tries. Everything it says is labelled
``[stand-in model]``.

::

    with StandInModel(rules) as model:
        client = openai.OpenAI(base_url=model.base_url, api_key="stand-in")

The planner (:class:`Planner`) is usable on its own, without sockets.
"""

from __future__ import annotations

from ._conversation import AssistantTurn, Conversation, MadeCall, ToolOutput, UserMessage
from ._errors import InvalidRequest, RulesError, StandInError
from ._labels import MARKER, MODEL_ID
from ._model import StandInModel
from ._planner import Decision, PlannedCall, Planner, ToolOffer
from ._rules import DEFAULT_INJECTION_SUFFIX, FollowUp, Misbehaviour, MisbehaviourKind, Rule, RuleSet, ToolCallSpec
from ._rulesfile import load_rules, parse_rules
from ._settings import ModelSettings, model_settings_from_env

__all__ = [
    "DEFAULT_INJECTION_SUFFIX",
    "MARKER",
    "MODEL_ID",
    "AssistantTurn",
    "Conversation",
    "Decision",
    "FollowUp",
    "InvalidRequest",
    "MadeCall",
    "Misbehaviour",
    "MisbehaviourKind",
    "ModelSettings",
    "PlannedCall",
    "Planner",
    "Rule",
    "RuleSet",
    "RulesError",
    "StandInError",
    "StandInModel",
    "ToolCallSpec",
    "ToolOffer",
    "ToolOutput",
    "UserMessage",
    "load_rules",
    "model_settings_from_env",
    "parse_rules",
]
