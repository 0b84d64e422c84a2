"""Strict reading of request bodies and query strings.

Every field is read through one of these helpers, so every malformed input becomes the same kind of answer — a
400 ``invalid_request`` naming the field — before any state is touched. ``bool`` is never accepted as an
integer, strings are bounded and never hold NUL, and what the broker stores follows one rule, the one scope
templates apply to model-chosen values (:func:`agentwrit_tools.scopes.is_identifier`): ids are plain identifiers
(:func:`req_identifier`), names are identifiers joined by ``/`` (:func:`req_name`), every part of a scope is an
identifier (:func:`req_scope_list`). Zero-width, bidirectional, control and non-ASCII look-alike characters,
``..`` and ``\\`` never reach the database, so two ids that print the same are the same id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..scopes import SAFE_VALUE_PATTERN, is_identifier, is_plain_scope
from ._problems import Problem, bad_request

__all__ = [
    "MAX_STRING",
    "int_or",
    "is_agent_id",
    "opt_bool",
    "opt_int",
    "opt_str",
    "parse_json_object",
    "query_int",
    "req_identifier",
    "req_name",
    "req_scope_list",
    "req_str",
]

MAX_STRING = 4096
MAX_SCOPES = 256
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_INT = re.compile(r"-?[0-9]{1,18}")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object.

    Raises:
        Problem: 400 for empty bodies, invalid JSON or non-object JSON.
    """
    if not raw.strip():
        raise bad_request("the request body must be a JSON object")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise bad_request("the request body must be a JSON object")
    # Lone UTF-16 surrogates — spelled \ud800 in JSON, or raw ED A0..BF bytes that json.loads lets through —
    # cannot be stored or sent back as UTF-8; refuse them here rather than fail later. The byte test keeps the
    # common case free.
    if _SURROGATE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request("the request body holds invalid Unicode (a lone surrogate)") from None
    return value


def req_str(body: Mapping[str, Any], name: str, *, max_len: int = MAX_STRING) -> str:
    """A required, non-blank string field."""
    value = body.get(name)
    if value is None:
        raise bad_request(f"missing required field {name!r}")
    if not isinstance(value, str):
        raise bad_request(f"field {name!r} must be a string")
    if not value.strip():
        raise bad_request(f"field {name!r} must not be empty")
    if len(value) > max_len:
        raise bad_request(f"field {name!r} is longer than {max_len} characters")
    if "\x00" in value:
        # No field of the contract holds NUL; a key-derivation function would even pad it away ("s" == "s\0").
        raise bad_request(f"field {name!r} holds a NUL character")
    return value


def opt_str(body: Mapping[str, Any], name: str, *, max_len: int = MAX_STRING) -> str | None:
    if body.get(name) is None:
        return None
    return req_str(body, name, max_len=max_len)


def opt_int(body: Mapping[str, Any], name: str, *, minimum: int = 1, error_code: str = "invalid_request") -> int | None:
    """An optional integer field with a lower bound (``None`` or absent → ``None``)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Problem(400, error_code, f"field {name!r} must be an integer")
    if value < minimum:
        raise Problem(400, error_code, f"field {name!r} must be at least {minimum}")
    return value


def int_or(
    body: Mapping[str, Any], name: str, default: int, *, minimum: int = 1, error_code: str = "invalid_request"
) -> int:
    """An integer field with a lower bound and a default for ``None`` or absent."""
    value = opt_int(body, name, minimum=minimum, error_code=error_code)
    return default if value is None else value


def opt_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"field {name!r} must be true or false")
    return value


_IDENTIFIER_HINT = f"identifiers match {SAFE_VALUE_PATTERN}: ASCII letters, digits and _ . @ + -"


def req_identifier(body: Mapping[str, Any], name: str) -> str:
    """A required plain identifier (task and orchestrator ids): what may appear in an agent's SPIFFE ID."""
    value = req_str(body, name, max_len=256)
    if not is_identifier(value):
        raise bad_request(f"field {name!r} must be a plain identifier", hint=_IDENTIFIER_HINT)
    return value


def req_name(body: Mapping[str, Any], name: str) -> str:
    """A required name made of plain identifiers joined by ``/`` (``orch/task``, as the official client sends)."""
    value = req_str(body, name, max_len=256)
    if not all(is_identifier(part) for part in value.split("/")):
        raise bad_request(f"field {name!r} must be plain identifiers joined by '/'", hint=_IDENTIFIER_HINT)
    return value


def is_agent_id(text: str) -> bool:
    """``spiffe://{trust domain}/agent/{orch_id}/{task_id}/{instance}`` with every segment a plain identifier."""
    head, _, path = text.partition("://")
    segments = path.split("/")
    return (
        head == "spiffe"
        and len(segments) == 5
        and segments[1] == "agent"
        and all(is_identifier(segment) for segment in segments)
    )


def req_scope_list(body: Mapping[str, Any], name: str) -> list[str]:
    """A required, non-empty list of well-formed scopes, de-duplicated in order.

    A single string is refused rather than guessed at: ``"read:a:b"`` and ``["read:a:b"]`` look alike but a
    client sending the former has a bug worth surfacing.
    """
    value = body.get(name)
    if value is None:
        raise bad_request(f"missing required field {name!r}")
    if not isinstance(value, list):
        raise bad_request(f"field {name!r} must be a list of scopes")
    if not value:
        raise bad_request(f"field {name!r} must not be empty")
    if len(value) > MAX_SCOPES:
        raise bad_request(f"field {name!r} holds more than {MAX_SCOPES} scopes")
    for item in value:
        if not isinstance(item, str) or len(item) > MAX_STRING or not is_plain_scope(item):
            raise bad_request(
                f"field {name!r} holds a malformed scope",
                hint="scopes look like action:resource:identifier, each part a plain identifier "
                f"({SAFE_VALUE_PATTERN}); '*' only as the whole identifier",
            )
    return list(dict.fromkeys(value))


def query_int(params: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    """An integer query parameter; values above ``maximum`` are clamped, malformed or too small ones refused."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INT.fullmatch(raw):
        raise bad_request(f"query parameter {name!r} must be an integer")
    value = int(raw)
    if value < minimum:
        raise bad_request(f"query parameter {name!r} must be at least {minimum}")
    return min(value, maximum)
