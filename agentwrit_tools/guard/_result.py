"""``ToolResult``: what one guarded call produced, in a shape any framework adapter can use.

``content`` is always a ``str`` — the tool's output serialised as JSON (a ``str`` output as-is), or the
model-visible message of a denial or failure — because that is what every tool-calling protocol sends back to
the model. ``output`` keeps the Python value for code that wants it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["DENIAL_KINDS", "ERROR_KINDS", "ErrorKind", "ToolResult", "jsonable", "to_content"]

ErrorKind = Literal[
    "invalid_arguments",
    "unsafe_argument",
    "outside_ceiling",
    "budget_exhausted",
    "unknown_tool",
    "approval_denied",
    "broker_refused",
    "scope_mismatch",
    "mint_failed",
    "tool_error",
    "timeout",
    "cancelled",
]

DENIAL_KINDS: frozenset[str] = frozenset(
    {
        "unsafe_argument",
        "outside_ceiling",
        "budget_exhausted",
        "unknown_tool",
        "approval_denied",
        "broker_refused",
        "scope_mismatch",
    }
)
"""Refused before the body ran, on grounds of authority: ``ToolResult.denied`` is True."""

ERROR_KINDS: frozenset[str] = frozenset({"mint_failed", "tool_error", "timeout", "cancelled"})
"""The call went wrong while being carried out (``invalid_arguments`` is neither: the model sent bad input)."""


def jsonable(value: Any) -> Any:
    """``json.dumps``'s ``default``: pydantic models, dataclasses and sets as JSON; anything else as its text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_content(output: Any) -> str:
    """The text a model gets for a tool's return value: a ``str`` as-is, anything else as JSON."""
    if isinstance(output, str):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    try:
        return json.dumps(output, default=jsonable, ensure_ascii=False)
    except (TypeError, ValueError):  # circular structures and the like
        return str(output)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The result of one guarded tool call.

    Attributes:
        tool: the tool's name (or the unknown name asked for, shortened).
        call_id: the call's id (the model's tool-call id when the adapter passed it).
        ok: the body ran and returned.
        denied: refused before the body ran on grounds of authority (see :data:`DENIAL_KINDS`).
        error_kind: None when ``ok``; otherwise one of :data:`ErrorKind`.
        message: the model-visible text of a denial or failure ("" when ``ok``).
        output: the body's return value when ``ok``, else ``message``.
        scope: the scopes the call needed (empty when they could not be rendered).
        jti: the credential's token id, when one was minted.
        agent_id: the credential's SPIFFE ID, when one was minted.
        exception: what a raising policy raises for this result (the tool's own exception for a tool error);
            for logs and debugging, never for the model.
    """

    tool: str
    call_id: str
    ok: bool
    denied: bool
    error_kind: ErrorKind | None
    message: str
    output: Any
    scope: tuple[str, ...] = ()
    jti: str | None = None
    agent_id: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def content(self) -> str:
        """What to send back to the model: the output as text when ``ok``, else the message."""
        return to_content(self.output) if self.ok else self.message
