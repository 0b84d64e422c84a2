"""The access log: who called what, with which authority, and what the answer was.

One :class:`AccessRecord` per checked request, handed to the hooks a protected API configures. Records name the
caller by verified claims only (``agent_id`` is the token's ``sub``, ``jti`` its id) and never hold the token: a
refused forgery is recorded without any of its (unverified) claims, since a forger chooses them. Hooks observe,
they do not decide: a failing hook is logged by class name and the request goes on with the decision already
made, as trace sinks do.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AccessLog", "AccessRecord", "Outcome", "emit", "hooks_from", "log_access"]

Outcome = Literal["allowed", "unauthorized", "revoked", "insufficient_scope", "invalid_request", "unavailable"]

AccessLog = Callable[["AccessRecord"], Any]
"""Anything that takes one record. It runs inside the request, so it should be quick."""

_log = logging.getLogger("agentwrit_tools.resource")
access_logger = logging.getLogger("agentwrit_tools.resource.access")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRecord:
    """One checked request.

    Attributes:
        time: Unix wall-clock seconds when the decision was made.
        outcome: ``allowed``, or why not: ``unauthorized`` (no/bad token), ``revoked``, ``insufficient_scope``,
            ``invalid_request`` (a parameter unfit for a scope, several Authorization headers) or
            ``unavailable`` (the token could not be verified: the broker is unreachable).
        status: the HTTP status answered (200 stands for "passed to the handler").
        reason: a fixed phrase saying more than the caller was told (``expired``, ``signature or claims``…).
        method: the HTTP method (empty outside HTTP).
        route: the route template (``/records/{patient_id}``), or the name the caller gave.
        path: the concrete request path.
        request_id: the request's ``X-Request-ID`` (the caller's when sane, else generated).
        agent_id: the verified ``sub`` (None when the token was not verified).
        jti: the verified token id.
        task_id: the verified ``task_id``.
        orch_id: the verified ``orch_id``.
        delegation_depth: how many delegation hops the verified token carries.
        required: the scopes the request needed (empty when they could not be rendered).
        held: the scopes of the verified token.
        missing: the required scopes the token does not cover.
    """

    time: float
    outcome: Outcome
    status: int
    reason: str
    method: str
    route: str
    path: str
    request_id: str
    agent_id: str | None = None
    jti: str | None = None
    task_id: str | None = None
    orch_id: str | None = None
    delegation_depth: int = 0
    required: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists), for JSON-lines files and log shippers."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            out[item.name] = list(value) if isinstance(value, tuple) else value
        return out


def log_access(record: AccessRecord) -> None:
    """The default hook: one INFO line on the ``agentwrit_tools.resource.access`` logger."""
    access_logger.info(
        "%s %s %s -> %d %s (%s) agent=%s jti=%s required=%s held=%s request=%s",
        record.method or "-",
        record.route or "-",
        record.path or "-",
        record.status,
        record.outcome,
        record.reason,
        record.agent_id or "-",
        record.jti or "-",
        ",".join(record.required) or "-",
        ",".join(record.held) or "-",
        record.request_id,
    )


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""Marks an ``access_log`` argument left out: records then go to :func:`log_access`."""


def hooks_from(access_log: AccessLog | Iterable[AccessLog] | None) -> tuple[AccessLog, ...]:
    """Normalise the ``access_log`` argument: default → :func:`log_access`, None → nothing, one or several."""
    if access_log is DEFAULT:
        return (log_access,)
    if access_log is None:
        return ()
    if callable(access_log):
        return (access_log,)
    hooks = tuple(access_log)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"an access log hook must be callable, not {type(hook).__name__}")
    return hooks


def emit(hooks: Iterable[AccessLog], record: AccessRecord) -> None:
    """Give ``record`` to every hook; a failing hook is logged and skipped, never allowed to change the answer."""
    for hook in hooks:
        try:
            hook(record)
        except Exception as exc:
            _log.warning("access log hook %r failed (%s)", hook, type(exc).__name__)
