"""What both OpenAI APIs share on the wire: request validation errors, text parts, token estimates, chunking.

Pure functions; the HTTP server and the two API modules build on them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from ._errors import InvalidRequest
from ._planner import ToolOffer

__all__ = [
    "body_digest",
    "content_text",
    "error_body",
    "estimate_tokens",
    "parse_request",
    "parse_value",
    "pieces",
    "tool_offer",
]

_Model = TypeVar("_Model", bound=BaseModel)
_T = TypeVar("_T")
_WORD = re.compile(r"\S+\s*|\s+")
_UNION_LABELS = frozenset(
    {"str", "int", "float", "bool", "none", "message", "function_call", "function_call_output", "reasoning"}
)


def error_body(message: str, *, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON (``kind`` is its ``type``), which its clients turn into typed exceptions."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _dotted(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, str) and (part in _UNION_LABELS or "[" in part):
            continue  # pydantic names the union member it tried; the client only knows the field
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _invalid(exc: ValidationError, at: str) -> InvalidRequest:
    first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    param = _dotted([at, *first["loc"]] if at else first["loc"])
    if first["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    return InvalidRequest(f"Invalid value for '{param}': {first['msg']}.", param=param, code="invalid_value")


def parse_request(model: type[_Model], body: Mapping[str, Any]) -> _Model:
    """Validate a request body, turning pydantic's report into one OpenAI-style message.

    The message names the field but never echoes its value: request text is the user's, not the log's.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc, "") from None


def parse_value(adapter: TypeAdapter[_T], value: Any, *, at: str) -> _T:
    """Validate ``value``, found at request field ``at``, like :func:`parse_request`."""
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise _invalid(exc, at) from None


def content_text(content: str | Sequence[Mapping[str, Any]] | None) -> str:
    """The text of a message's ``content``: a string, or the ``text`` of its parts (images are skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if isinstance(part.get("text"), str))


def tool_offer(names: Sequence[str], tool_choice: Any, parallel_tool_calls: bool | None) -> ToolOffer:
    """What the request allows, from ``tools``, ``tool_choice`` and ``parallel_tool_calls`` (either API).

    ``tool_choice`` may be ``"none"`` (no calls), ``"auto"``/``"required"`` (the rules decide), or one named
    function — chat's ``{"type": "function", "function": {"name": …}}`` or Responses' ``{"type": "function",
    "name": …}`` — which narrows the offer to that function.
    """
    offered = frozenset(names)
    if isinstance(tool_choice, Mapping) and tool_choice.get("type") == "function":
        function = tool_choice.get("function")
        chosen = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        if not isinstance(chosen, str):
            raise InvalidRequest("Invalid value for 'tool_choice': a function needs a name.", param="tool_choice")
        offered = offered & {chosen}
    return ToolOffer(names=offered, enabled=tool_choice != "none", parallel=parallel_tool_calls is not False)


def estimate_tokens(text: str) -> int:
    """A deterministic token count (about four characters a token); the stand-in has no tokenizer."""
    return (len(text) + 3) // 4


def body_digest(body: Mapping[str, Any]) -> str:
    """A hash of the request body, so response ids differ exactly when requests do."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def pieces(text: str, *, words: int = 4) -> Iterator[str]:
    """Split ``text`` into stream deltas a few words long; the same text always splits the same way."""
    tokens = _WORD.findall(text)
    for start in range(0, len(tokens), words):
        yield "".join(tokens[start : start + words])
