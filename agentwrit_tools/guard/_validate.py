"""Checks of what a caller configures — ids, durations, a policy, a list of scopes — shared by the guard's
:class:`~agentwrit_tools.Task` and the pipeline, so both refuse the same values with the same words."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError, ScopeError
from ..scopes import parse_scope
from ._policy import Policy

__all__ = ["checked_id", "checked_policy", "checked_scopes", "positive_seconds"]


def checked_id(value: object, what: str) -> str:
    """An ``orch_id`` or ``task_id``: it becomes a path segment of a SPIFFE ID, hence no ``/``."""
    if not isinstance(value, str) or not value or "/" in value or len(value) > 256:
        raise ConfigurationError(f"{what} must be a non-empty string without '/' (at most 256 characters)")
    return value


def positive_seconds(value: object, what: str) -> int:
    """A positive whole number (``True`` is not one, though Python counts it as an ``int``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be a positive whole number of seconds")
    return value


def checked_policy(policy: object) -> Policy:
    """The policy given, or the default one (tell the model)."""
    if policy is not None and not isinstance(policy, Policy):
        raise ConfigurationError("policy must be a Policy (e.g. Policy.tell_model())")
    return policy or Policy.tell_model()


def checked_scopes(items: Sequence[str], where: str) -> tuple[str, ...]:
    """Every item parses as a scope (ConfigurationError naming ``where`` otherwise); duplicates dropped, in order."""
    try:
        for item in items:
            parse_scope(item)
    except ScopeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    return tuple(dict.fromkeys(items))
