"""Every sentence a model may see from the guard, built only from values that are safe to show.

Tool names, scopes that passed validation, fixed reasons and exception *class* names — never the text of a
foreign exception (``str(exc)`` of an HTTP error can quote a header, and a header can hold a token) and never a
model-chosen value that failed validation (it may be hostile or huge).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import UnsafeArgumentError, redact

__all__ = [
    "approval_refused",
    "audience_mismatch",
    "broker_refused",
    "budget_exhausted",
    "cancelled",
    "clip",
    "invalid_arguments",
    "mint_failed",
    "outside_ceiling",
    "scope_mismatch",
    "timeout",
    "tool_failed",
    "unknown_tool",
    "unsafe_argument",
]

_MAX_MESSAGE = 500


def clip(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Shorten ``text`` to ``limit`` characters (a model's context is not a log file)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _list(scopes: Iterable[str]) -> str:
    return ", ".join(scopes) or "nothing"


def invalid_arguments(tool: str, problems: Sequence[tuple[str, str]]) -> str:
    detail = "; ".join(f"{loc}: {msg}" for loc, msg in problems) or "they do not match the schema"
    return clip(f"invalid arguments for {tool}: {detail}")


def unsafe_argument(exc: UnsafeArgumentError) -> str:
    return clip(f"access denied: argument {exc.argument!r} cannot be used in a scope: {exc.reason}")


def outside_ceiling(missing: Sequence[str], held: Sequence[str]) -> str:
    return clip(f"access denied: needs {_list(missing)}, task holds {_list(held)}", 2000)


def budget_exhausted() -> str:
    return "access denied: the task's time budget is spent; no new credentials can be issued"


def unknown_tool(name: str, known: Iterable[str]) -> str:
    shown = redact(name)[:64]
    available = ", ".join(sorted(known)) or "none"
    return clip(f"unknown tool: {shown!r} (available: {available})")


def broker_refused(scopes: Sequence[str]) -> str:
    return clip(f"access denied: the broker refused a credential for {_list(scopes)}", 2000)


def scope_mismatch(scopes: Sequence[str]) -> str:
    return clip(f"access denied: the credential issued was not exactly {_list(scopes)}; the call was not run")


def audience_mismatch(audience: str) -> str:
    return clip(f"access denied: the credential issued was not bound to {audience}; the call was not run")


def mint_failed(tool: str) -> str:
    return f"{tool} could not run: no credential could be obtained right now; try again later"


def timeout(tool: str, seconds: float) -> str:
    return f"{tool} timed out after {seconds:g} s"


def cancelled(tool: str) -> str:
    return f"{tool} was cancelled"


def tool_failed(tool: str, exc: BaseException) -> str:
    return f"{tool} failed ({type(exc).__name__})"


_APPROVAL = {
    "denied": "the approver said no",
    "arguments_changed": "the approval given was for another call (other arguments, scope or task)",
    "expired": "the approval given is too old",
    "replayed": "the approval given was already used",
    "no_approver": "no approver is configured for it",
    "approver_failed": "the approver could not give an answer",
    "not_recorded": "the approval could not be recorded in the broker's audit log",
}


def approval_refused(tool: str, reason: str, timeout: float) -> str:
    why = f"no answer within {timeout:g} s" if reason == "timeout" else _APPROVAL.get(reason, "it was refused")
    return f"access denied: {tool} needs a person's approval, and it was not given ({why}); nothing was done"
