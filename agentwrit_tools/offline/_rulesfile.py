r"""Rules from JSON: a file a demo ships next to its code, or a dict built in a notebook.

The JSON mirrors the dataclasses field for field (see :mod:`._rules`); unknown keys are errors, because a
misspelt ``"misbehave"`` silently ignored would turn an adversarial demo into a well-behaved one. Every error
names the file and the place inside it. A bare list is read as ``{"rules": [...]}``::

    {
      "max_tool_turns": 8,
      "rules": [
        {
          "name": "patient-record",
          "description": "show a patient's record, e.g. 'record of P-1042'",
          "when": "(?i)record.*\\b(?P<patient_id>P-\\d+)",
          "calls": [{"tool": "get_record", "arguments": {"patient_id": "{patient_id}", "fields": "summary"}}],
          "follow_ups": [
            {"after": "get_record", "when": "\"physician_id\": \"(?P<physician_id>D-\\d+)\"",
             "calls": [{"tool": "get_physician", "arguments": {"physician_id": "{physician_id}"}}]}
          ],
          "answer": "Record of {patient_id}: {get_record}"
        },
        {
          "name": "curious-model",
          "when": "(?i)labs.*\\b(?P<patient_id>P-\\d+)",
          "calls": [
            {"tool": "get_labs", "arguments": {"patient_id": "{patient_id}"},
             "misbehave": {"kind": "other_subject", "argument": "patient_id", "value": "P-0002"}},
            {"tool": "delete_record", "arguments": {"patient_id": "{patient_id}"},
             "misbehave": {"kind": "dangerous_tool"}}
          ]
        }
      ]
    }
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._errors import RulesError
from ._rules import RuleSet

__all__ = ["load_rules", "parse_rules"]

_ADAPTER: TypeAdapter[RuleSet] = TypeAdapter(RuleSet)
# pydantic speaks Python ("a valid tuple"); a rules file is JSON.
_PLAIN_JSON = {
    "unexpected_keyword_argument": "unknown field",
    "tuple_type": "should be a list",
    "list_type": "should be a list",
    "dict_type": "should be an object",
    "mapping_type": "should be an object",
    "missing": "required field is missing",
    "missing_argument": "required field is missing",
}


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_rules(data: Any, *, source: str = "<json>") -> RuleSet:
    """Build a :class:`RuleSet` from parsed JSON (a dict with ``rules``, or a bare list of rules).

    Raises:
        RulesError: with the first problem found and where it is.
    """
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise RulesError("expected an object with a 'rules' list (or a list of rules)", source=source)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        cause = (first.get("ctx") or {}).get("error")
        reason = cause.reason if isinstance(cause, RulesError) else first["msg"]
        reason = _PLAIN_JSON.get(first["type"], reason)
        raise RulesError(reason, source=source, location=_location(tuple(first["loc"]))) from None
    except RulesError as exc:  # raised outside a field (whole-object checks)
        raise RulesError(exc.reason, source=source, location=exc.location) from None


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Read a rules file (JSON, UTF-8).

    Raises:
        RulesError: the file is missing, unreadable, not JSON, or not a valid rule set; the message is one line.
    """
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError("no such file", source=source) from None
    except IsADirectoryError:
        raise RulesError("is a directory, not a rules file", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read: {type(exc).__name__}", source=source) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", source=source) from None
    return parse_rules(data, source=source)
