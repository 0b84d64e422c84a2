"""What the model is told when a call is refused or fails, and when the caller gets an exception instead.

Every model-visible sentence is written here, from fixed text and values we control (tool names, scopes that
passed validation, class names). The text of a foreign exception is never used: ``str(exc)`` of an HTTP error
can quote a header, and a header can hold a token. Two deliberate exceptions, both passed through
:func:`~agentwrit_tools.errors.redact`: the message of a :class:`~agentwrit_tools.errors.ToolError` (its author
wrote it for the model) and the text of a ``describe_error`` hook the developer installs on purpose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import ToolError, redact
from . import _messages as messages
from ._approval import ApprovalRules, Approver
from ._result import DENIAL_KINDS, ToolResult

__all__ = ["Policy"]

Action = Literal["tell", "raise"]


@dataclass(frozen=True, slots=True)
class Policy:
    """How refusals and failures reach the caller — as a message for the model, or as an exception — and which
    calls need a person's approval first.

    Refusals are denials (:data:`DENIAL_KINDS`) and invalid arguments — things the model caused and can react
    to. Errors are mint failures, tool errors and timeouts. Cancellation always propagates (after the release).

    Prefer the named constructors: :meth:`tell_model` (the default), :meth:`raise_errors`, :meth:`raise_all`;
    add approval with :meth:`with_approval`.

    Attributes:
        on_denial: ``"tell"`` or ``"raise"`` for refusals.
        on_error: ``"tell"`` or ``"raise"`` for errors.
        describe_error: ``(tool name, exception) -> str``: your own sentence for a tool error (redacted before
            use). Without it the model gets ``"<tool> failed (<ExceptionClass>)"``.
        approval: who approves dangerous calls and which scopes need it (None: only tools declared with
            ``approval=True`` do, and with no approver they are refused).
    """

    on_denial: Action = "tell"
    on_error: Action = "tell"
    describe_error: Callable[[str, BaseException], str] | None = None
    approval: ApprovalRules | None = None

    @classmethod
    def tell_model(cls, *, describe_error: Callable[[str, BaseException], str] | None = None) -> Policy:
        """Refusals and errors become messages for the model; the agent loop keeps going."""
        return cls("tell", "tell", describe_error)

    @classmethod
    def raise_errors(cls) -> Policy:
        """Errors raise (the developer should see them); refusals are still told to the model."""
        return cls("tell", "raise")

    @classmethod
    def raise_all(cls) -> Policy:
        """Refusals and errors raise: for code that calls tools directly rather than through a model."""
        return cls("raise", "raise")

    def with_approval(
        self,
        approver: Approver | None,
        *,
        scopes: Sequence[str] = (),
        timeout: float = 120.0,
        max_age: float = 120.0,
    ) -> Policy:
        """This policy, with calls needing a person's yes before anything is minted.

        Args:
            approver: called with an :class:`~agentwrit_tools.guard.ApprovalRequest` (tool, canonical arguments,
                exact scopes) for every call that needs approval; sync or async; answers True/False or an
                :class:`~agentwrit_tools.guard.Approval`. Ready ones: :func:`~agentwrit_tools.guard.cli_approver`,
                :class:`~agentwrit_tools.adapters.langchain.InterruptApprover`, the demo kit's web button.
            scopes: scope patterns whose calls need approval (e.g. ``write:prescriptions:*``), besides tools
                declared with ``approval=True``.
            timeout: seconds to wait for an answer (then: denied).
            max_age: seconds an approval stays good after it was given.
        """
        rules = ApprovalRules(approver, tuple(scopes), timeout, max_age)
        return dataclasses.replace(self, approval=rules)

    def tool_error_message(self, tool: str, exc: BaseException) -> str:
        """The sentence for a tool error: ToolError text, the hook's text, or the fixed one (never ``str(exc)``)."""
        if isinstance(exc, ToolError):
            return messages.clip(f"{tool} failed: {redact(str(exc))}")
        if self.describe_error is not None:
            try:
                text = self.describe_error(tool, exc)
            except Exception:  # a broken hook must not turn a tool error into a crash
                text = None
            if isinstance(text, str) and text:
                return messages.clip(redact(text))
        return messages.tool_failed(tool, exc)

    def wants_raise(self, result: ToolResult) -> bool:
        """Whether this result should be raised (its ``exception``) rather than returned."""
        if result.ok or result.exception is None or result.error_kind == "cancelled":
            return False
        if result.error_kind in DENIAL_KINDS or result.error_kind == "invalid_arguments":
            return self.on_denial == "raise"
        return self.on_error == "raise"
