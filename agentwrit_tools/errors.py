"""The one exception hierarchy of agentwrit-tools.

::

    AgentWritError                      root: catch this to catch everything we raise
    ├── ScopeError (ValueError)         a scope string or template is malformed
    │   └── UnsafeArgumentError         a model-chosen value would widen a rendered scope
    ├── ConfigurationError              the library or a tool is set up wrongly (caught at declaration time)
    │   ├── RulesError (ValueError)     offline.RulesError: a stand-in model's rules file is malformed
    │   └── DemoError                   demo.DemoError: a demo cannot start as asked (port in use, no broker…)
    ├── CredentialReleased              renew/delegate on a credential that was already released (nothing sent)
    ├── TaskBudgetExhausted             a task launcher's time budget is spent; nothing more can be minted
    ├── GuardError                      the guard did not complete a tool call (raised only when a Policy says so)
    │   ├── AccessDenied                refused before the body ran: unsafe argument, outside the ceiling…
    │   ├── InvalidToolArguments (ValueError)  the model's arguments do not fit the tool's schema
    │   └── ToolTimeout (TimeoutError)  the tool body ran past its timeout (its credential is released)
    ├── ToolError                       raised by a tool body on purpose: its message is meant for the model
    │   └── BackendRefused              demo.BackendRefused: a demo's protected API refused a tool's request
    ├── PipelineError                   pipeline.PipelineError: authority could not move to the next stage
    │   ├── DelegationRefused           the next stage's scope is not within what the previous stage holds
    │   └── DelegationTooDeep           the handoff would pass the broker's delegation depth limit (5)
    ├── AccessRefused                   resource.AccessRefused: a protected endpoint refused the bearer
    ├── ProofInvalid                    pop.ProofInvalid: a proof of possession is missing, forged, stale or replayed
    ├── MCPServerError                  adapters.mcp.MCPServerError: an MCP server unreachable, silent or malformed
    ├── StandInError                    offline.StandInError: the stand-in model could not serve a request
    │   └── InvalidRequest              offline.InvalidRequest: a malformed OpenAI-protocol request
    ├── TokenInvalid                    a token failed verification: forged, expired, malformed, unknown key…
    │   └── TokenRevoked                local verification found it in the broker's revocation feed
    └── BrokerError                     a call to the broker failed (.method, .path)
        ├── BrokerUnavailable           no HTTP answer at all: refused, reset, timed out (alias TransportError)
        ├── ProtocolError               an answer that breaks the wire contract (non-JSON, missing fields…)
        │   ├── ScopeMismatch           the verified claims are not what was requested
        │   └── AudienceMismatch        a credential asked for one resource is not bound to it (``aud``)
        └── ProblemError                the broker answered with an error status (.problem, .status_code)
            ├── InvalidRequest          400 invalid_request (and other 400 codes)
            ├── Unauthorized            401: missing, bad or expired credentials or token
            ├── Forbidden               403
            │   ├── InsufficientScope   403 insufficient_scope: the bearer lacks the scope, or is revoked
            │   └── ScopeViolation      403 scope_violation / ceiling exceeded: authority would widen
            ├── NotFound                404
            ├── RateLimited             429 (.retry_after, seconds or None)
            └── ServerError             5xx

Classes marked ``package.Name`` live beside the code that raises them (and import only when it is used); the
rest are defined here. Transport failures (:class:`BrokerUnavailable`) are kept apart from refusals
(:class:`ProblemError`) because they call for opposite reactions: retry later vs. fix the request. Messages
never carry a token, a secret or the text of a foreign exception: they are safe to log. What a model sees is
built by an explicit policy elsewhere, never from ``str(exc)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client._models import Problem

__all__ = [
    "AccessDenied",
    "AgentWritError",
    "AudienceMismatch",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigurationError",
    "CredentialReleased",
    "Forbidden",
    "GuardError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToolArguments",
    "NotFound",
    "ProblemError",
    "ProtocolError",
    "RateLimited",
    "ScopeError",
    "ScopeMismatch",
    "ScopeViolation",
    "ServerError",
    "TaskBudgetExhausted",
    "TokenInvalid",
    "TokenRevoked",
    "ToolError",
    "ToolTimeout",
    "TransportError",
    "Unauthorized",
    "UnsafeArgumentError",
    "redact",
]

# Compact JWS/JWT, then any long run of token-ish characters (hex launch tokens, base64url secrets). Broker
# details are not supposed to contain either; this is the belt to that pair of braces. '/' is left out of the
# run so SPIFFE IDs (``spiffe://td/agent/orch/task/instance``) in details stay readable; secrets we sent
# ourselves are removed by exact match (``known``), whatever their alphabet.
_JWT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-+=]{32,}")


def redact(text: str, known: Iterable[str] = ()) -> str:
    """Replace anything that looks like a token or a secret, and every ``known`` secret, with ``[redacted]``.

    Used on every piece of text we did not write ourselves (broker ``detail``/``hint``) before it reaches a
    message, so a misbehaving broker cannot make us log a credential — in particular by echoing what we sent.
    """
    for secret in known:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    return _LONG_RUN.sub("[redacted]", _JWT.sub("[redacted]", text))


class AgentWritError(Exception):
    """Root of every error raised by agentwrit-tools.

    Attributes:
        unreleased: ``(jti, exp)`` of a token the broker issued during the failed operation and that could not be
            released either (so it stays valid until ``exp``); None in every other case.
    """

    unreleased: tuple[str, int] | None = None


class ConfigurationError(AgentWritError):
    """The library, a broker setting or a tool declaration is wrong; fix the code or the settings."""


class ScopeError(AgentWritError, ValueError):
    """A scope or scope template does not follow ``action:resource:identifier``.

    Attributes:
        scope: the offending text (a scope or template; never a token).
    """

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class UnsafeArgumentError(ScopeError):
    """A value interpolated into a scope template is not a plain identifier.

    Raised instead of rendering, so a model cannot ask for ``read:records:*`` by choosing ``*`` as an argument.

    Attributes:
        argument: the name of the argument (never its value, which may be hostile or huge).
        template: the template being rendered.
        reason: a short, fixed description of why the value was refused.
    """

    def __init__(self, *, argument: str, template: str, reason: str) -> None:
        super().__init__(
            f"argument {argument!r} cannot be used in scope template {template!r}: {reason}",
            scope=template,
        )
        self.argument = argument
        self.template = template
        self.reason = reason


class CredentialReleased(AgentWritError):
    """The credential was released; it cannot be renewed or delegated any more.

    Raised locally, before anything is sent: a released token is dead at the broker, and a confusing 401/403
    from the broker would hide the real cause (a use-after-release bug in the caller).
    """


class TaskBudgetExhausted(AgentWritError):
    """A task launcher's time budget is spent, so no credential may be minted under it any more."""


class GuardError(AgentWritError):
    """The guard did not complete a tool call.

    Only raised when the task's policy asks for exceptions; by default the same outcome is a message to the
    model. The message is the very text the model would have seen: written by us, never a token.

    Attributes:
        tool: the tool's name (or the unknown name the model asked for, shortened).
        call_id: the call's id.
    """

    def __init__(self, message: str, *, tool: str, call_id: str) -> None:
        super().__init__(message)
        self.tool = tool
        self.call_id = call_id


class AccessDenied(GuardError):
    """A tool call was refused before its body ran, so nothing with the wrong authority was ever minted.

    Attributes:
        reason: a fixed code: ``unsafe_argument``, ``outside_ceiling``, ``budget_exhausted``, ``unknown_tool``,
            ``broker_refused`` or ``scope_mismatch``.
        required: the scopes the call needed (empty when they could not be rendered).
        missing: the required scopes the task's ceiling does not cover.
        held: the task's ceiling.
    """

    def __init__(
        self,
        message: str,
        *,
        tool: str,
        call_id: str,
        reason: str,
        required: tuple[str, ...] = (),
        missing: tuple[str, ...] = (),
        held: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, tool=tool, call_id=call_id)
        self.reason = reason
        self.required = required
        self.missing = missing
        self.held = held


class InvalidToolArguments(GuardError, ValueError):
    """The model's arguments do not fit the tool's JSON schema; nothing was rendered or minted.

    Attributes:
        problems: ``(location, message)`` pairs from validation, shortened (never the offending values).
    """

    def __init__(self, message: str, *, tool: str, call_id: str, problems: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message, tool=tool, call_id=call_id)
        self.problems = problems


class ToolTimeout(GuardError, TimeoutError):
    """The tool body ran longer than its timeout.

    Its credential was released when the timeout fired, so a body still running in a worker thread holds a dead
    token.

    Attributes:
        timeout: the limit, in seconds.
    """

    def __init__(self, message: str, *, tool: str, call_id: str, timeout: float) -> None:
        super().__init__(message, tool=tool, call_id=call_id)
        self.timeout = timeout


class ToolError(AgentWritError):
    """Raise this in a tool body to tell the model why the call failed, in words you chose.

    Any other exception reaches the model only as a fixed sentence naming its class (``str(exc)`` could carry a
    token or a secret). The message of a ``ToolError`` is sent, after :func:`redact`, because its author wrote
    it for the model.
    """


class TokenInvalid(AgentWritError):
    """A token failed verification.

    Deliberately vague about why (forged, expired, malformed, unknown key), like the broker's own
    ``token is invalid or expired``: callers must treat all of these the same, and an attacker learns nothing.

    Attributes:
        reason: a short fixed phrase for logs (never token text).
    """

    def __init__(self, message: str = "token is invalid or expired", *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class TokenRevoked(TokenInvalid):
    """Local verification found the token (its jti, agent, task or chain root) in the revocation feed."""

    def __init__(self, *, level: str) -> None:
        super().__init__("token is invalid or expired", reason=f"revoked ({level} level)")
        self.level = level


class BrokerError(AgentWritError):
    """A call to the broker failed.

    Attributes:
        method: HTTP method of the failed call.
        path: path of the failed call (no query string, never a token).
    """

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class BrokerUnavailable(BrokerError):
    """No HTTP answer came back: connection refused or reset, DNS failure, timeout.

    Attributes:
        sent: False when the request certainly never reached the broker (so any call may be retried).
    """

    def __init__(self, message: str, *, method: str = "", path: str = "", sent: bool = True) -> None:
        super().__init__(message, method=method, path=path)
        self.sent = sent


TransportError = BrokerUnavailable
"""Alias: the same class under the name the official client uses."""


class ProtocolError(BrokerError):
    """The broker answered, but not as the wire contract says (non-JSON body, missing fields, odd status)."""


class ScopeMismatch(ProtocolError):
    """The broker issued a token whose *verified* scope differs from the request.

    The token has already been released when this is raised, so nothing with the wrong authority survives.

    Attributes:
        requested: the scopes asked for.
        granted: the scopes in the verified token.
    """

    def __init__(
        self, *, requested: tuple[str, ...], granted: tuple[str, ...], method: str = "", path: str = ""
    ) -> None:
        super().__init__(
            f"the broker granted {list(granted)} where {list(requested)} was requested", method=method, path=path
        )
        self.requested = requested
        self.granted = granted


class AudienceMismatch(ProtocolError):
    """A credential minted for one resource does not carry that resource in its *verified* ``aud``.

    Binding a token to a resource is a broker extension; a reference broker ignores the request and issues its
    configured audience. The token has already been released when this is raised.

    Attributes:
        audience: the resource URL asked for.
    """

    def __init__(self, *, audience: str, method: str = "", path: str = "") -> None:
        super().__init__(
            f"the issued token is not bound to the resource {audience!r} that was requested", method=method, path=path
        )
        self.audience = audience


class ProblemError(BrokerError):
    """The broker answered with an error status and (normally) an RFC 7807 problem body.

    Attributes:
        problem: every field of the problem body (``type``, ``title``, ``status``, ``detail``, ``instance``,
            ``error_code``, ``request_id``, ``hint``); synthesized from the status when the body was not one.
        status_code: the HTTP status.
        error_code: shortcut for ``problem.error_code`` (None when the body was not a problem).
        request_id: shortcut for ``problem.request_id`` (or the ``X-Request-ID`` header), for support tickets.
    """

    def __init__(self, problem: Problem, *, method: str = "", path: str = "") -> None:
        code = f" {problem.error_code}" if problem.error_code else ""
        detail = f": {redact(problem.detail)}" if problem.detail else ""
        rid = f" (request {problem.request_id})" if problem.request_id else ""
        super().__init__(f"{method} {path} -> {problem.status}{code}{detail}{rid}", method=method, path=path)
        self.problem = problem
        self.status_code = problem.status
        self.error_code = problem.error_code
        self.request_id = problem.request_id


class InvalidRequest(ProblemError):
    """400: the request was malformed or a field was out of range (fix the call)."""


class Unauthorized(ProblemError):
    """401: credentials or token missing, wrong, expired or already consumed."""


class Forbidden(ProblemError):
    """403: authenticated, but not allowed."""


class InsufficientScope(Forbidden):
    """403 ``insufficient_scope``: the bearer token lacks the endpoint's scope, or has been revoked."""


class ScopeViolation(Forbidden):
    """403: the request would widen authority (registration, delegation, or a launch token above the ceiling)."""


class NotFound(ProblemError):
    """404: the app, agent or route does not exist."""


class RateLimited(ProblemError):
    """429: over the broker's rate limit.

    Attributes:
        retry_after: seconds the broker asked us to wait (None when it did not say).
    """

    def __init__(self, problem: Problem, *, retry_after: float | None, method: str = "", path: str = "") -> None:
        super().__init__(problem, method=method, path=path)
        self.retry_after = retry_after


class ServerError(ProblemError):
    """5xx: the broker (or a proxy in front of it) failed; the request may or may not have taken effect."""
