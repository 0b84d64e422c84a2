"""The thin I/O edges: verify the token of a :class:`Pending` check, synchronously or asynchronously.

Everything that decides lives in ``_gate``; these functions only call ``verify`` and hand the result (claims or
the failure) back. Any object with ``verify(token) -> Claims`` works — :class:`~agentwrit_tools.client.Verifier`
and :class:`~agentwrit_tools.client.Broker`, or their async twins on the async edge — so the verification modes
(local JWKS with a revocation bound, or remote validate) are whatever the verifier was configured with.

Only a token failure (:class:`TokenInvalid`) or a broker failure (:class:`BrokerError`) becomes an answer; a
broker failure is a 503, never an "allow". Anything else is a bug and propagates, which a framework turns into
a 500: closed as well.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Protocol, TypeGuard, cast

import anyio.to_thread

from ..client import Claims
from ..errors import AgentWritError, BrokerError, ConfigurationError, TokenInvalid
from ._access import DEFAULT, AccessLog, AccessRecord
from ._gate import Gate, Verdict, VerifyResult
from ._problems import Refusal, problem_body, problem_headers
from ._proof import Possession, ProofRules
from ._request import RequestFacts, Requirement

__all__ = [
    "AccessRefused",
    "AnyVerifier",
    "AsyncTokenVerifier",
    "SyncTokenVerifier",
    "adecide",
    "arequire",
    "decide",
    "is_async_verifier",
    "require",
]


class SyncTokenVerifier(Protocol):
    """``Verifier``, ``Broker``, or anything else whose ``verify`` returns claims or raises ``TokenInvalid``."""

    def verify(self, token: str) -> Claims: ...


class AsyncTokenVerifier(Protocol):
    """``AsyncVerifier``, ``AsyncBroker``: ``verify`` is a coroutine function."""

    def verify(self, token: str) -> Awaitable[Claims]: ...


AnyVerifier = SyncTokenVerifier | AsyncTokenVerifier


def is_async_verifier(verifier: AnyVerifier) -> TypeGuard[AsyncTokenVerifier]:
    return inspect.iscoroutinefunction(verifier.verify)


class AccessRefused(AgentWritError):
    """A protected operation refused the request; raised by :func:`require` and the FastAPI dependency.

    The message is the refusal's fixed detail: safe to log, never token text.

    Attributes:
        refusal: status, ``error_code``, detail and challenge.
        realm: the ``realm`` for the challenge (the gate's).
        record: the access record that was logged.
        claims: the verified claims when the token itself was fine (a scope or parameter refusal), else None.
        status_code: shortcut for ``refusal.status``.
        error_code: shortcut for ``refusal.error_code``.
    """

    def __init__(self, verdict: Verdict, *, realm: str | None = None) -> None:
        refusal = verdict.refusal
        if refusal is None:
            raise ValueError("AccessRefused needs a refused verdict")
        super().__init__(f"{refusal.status} {refusal.error_code}: {refusal.detail}")
        self.refusal: Refusal = refusal
        self.record: AccessRecord = verdict.record
        self.claims: Claims | None = verdict.claims
        self.status_code = refusal.status
        self.error_code = refusal.error_code
        self.realm = realm

    def problem(self, instance: str | None = None) -> dict[str, object]:
        """The RFC 7807 body (``instance`` defaults to the request's path)."""
        where = self.record.path if instance is None else instance
        return problem_body(self.refusal, instance=where, request_id=self.record.request_id)

    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate``, ``X-Request-ID`` and ``Cache-Control`` for the response."""
        return problem_headers(self.refusal, request_id=self.record.request_id, realm=self.realm)


def decide(verifier: SyncTokenVerifier, gate: Gate, facts: RequestFacts) -> Verdict:
    """Check one request with a synchronous verifier.

    Raises:
        ConfigurationError: ``verifier`` is asynchronous (use :func:`adecide`).
    """
    if is_async_verifier(verifier):
        raise ConfigurationError("this verifier is asynchronous; check requests with adecide/arequire")
    step = gate.begin(facts)
    if isinstance(step, Verdict):
        return step
    result: VerifyResult
    try:
        result = verifier.verify(step.token)
    except (TokenInvalid, BrokerError) as exc:
        result = exc
    return step.finish(result)


async def adecide(verifier: AnyVerifier, gate: Gate, facts: RequestFacts) -> Verdict:
    """Check one request from async code; a synchronous verifier runs in a worker thread."""
    step = gate.begin(facts)
    if isinstance(step, Verdict):
        return step
    result: VerifyResult
    try:
        result = await _verify(verifier, step.token)
    except (TokenInvalid, BrokerError) as exc:
        result = exc
    return step.finish(result)


async def _verify(verifier: AnyVerifier, token: str) -> Claims:
    if is_async_verifier(verifier):
        return await verifier.verify(token)
    return await anyio.to_thread.run_sync(cast(SyncTokenVerifier, verifier).verify, token)


def _facts(
    token: str | None, params: Mapping[str, object] | None, route: str, dpop: str | None, method: str, url: str
) -> RequestFacts:
    # A token handed over directly is checked exactly as if it came in an Authorization header: Bearer, or DPoP
    # when a proof of possession comes with it.
    scheme = "DPoP" if dpop is not None else "Bearer"
    authorization = (f"{scheme} {token}",) if token else ()
    proofs = (dpop,) if dpop is not None else ()
    return RequestFacts(authorization, params=dict(params or {}), route=route, method=method, dpop=proofs, url=url)


def _gate(
    scopes: str | Sequence[str] | Requirement | Gate,
    access_log: AccessLog | Iterable[AccessLog] | None,
    possession: ProofRules | Possession,
) -> Gate:
    return scopes if isinstance(scopes, Gate) else Gate(scopes, access_log=access_log, possession=possession)


def require(
    verifier: SyncTokenVerifier,
    token: str | None,
    scopes: str | Sequence[str] | Requirement | Gate,
    *,
    params: Mapping[str, object] | None = None,
    route: str = "",
    access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
    dpop: str | None = None,
    method: str = "",
    url: str = "",
    possession: ProofRules | Possession = "auto",
) -> Claims:
    """The verified claims of ``token`` when it covers ``scopes`` filled from ``params``; raise otherwise.

    For code with no web framework in between (a job queue, a gRPC servicer, a tool's own backend).

    Args:
        verifier: a :class:`~agentwrit_tools.client.Verifier` or :class:`~agentwrit_tools.client.Broker`.
        token: the presented token (None or empty: refused as missing).
        scopes: templates such as ``read:records:{patient_id}``, a :class:`Requirement`, or a ready :class:`Gate`
            (whose access log is then used and ``access_log`` ignored).
        params: values for the templates' placeholders; each must be a safe identifier (or a list of them).
        route: a name for the operation, for the access log.
        access_log: hooks for the access record (default: the logging hook).
        dpop: the proof of possession that came with a key-bound token (its ``DPoP`` header); the token is then
            taken as presented with the ``DPoP`` scheme. A key-bound token is refused without one.
        method: the request's method and ``url`` the URL it reached (query aside): what the proof must name.
        possession: ``"auto"`` (a key-bound token needs its proof), ``"required"`` (only key-bound tokens) or
            :class:`~agentwrit_tools.resource.ProofRules` (ignored when ``scopes`` is a ready :class:`Gate`).

    Raises:
        AccessRefused: missing/invalid/expired or without its proof of possession (401), revoked or lacking scope
            (403), unusable parameter (400), or the broker could not be reached to verify (503).
    """
    gate = _gate(scopes, access_log, possession)
    verdict = decide(verifier, gate, _facts(token, params, route, dpop, method, url))
    if verdict.refusal is not None or verdict.claims is None:
        raise AccessRefused(verdict, realm=gate.realm)
    return verdict.claims


async def arequire(
    verifier: AnyVerifier,
    token: str | None,
    scopes: str | Sequence[str] | Requirement | Gate,
    *,
    params: Mapping[str, object] | None = None,
    route: str = "",
    access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
    dpop: str | None = None,
    method: str = "",
    url: str = "",
    possession: ProofRules | Possession = "auto",
) -> Claims:
    """The async twin of :func:`require` (an async verifier is awaited, a sync one runs in a worker thread)."""
    gate = _gate(scopes, access_log, possession)
    verdict = await adecide(verifier, gate, _facts(token, params, route, dpop, method, url))
    if verdict.refusal is not None or verdict.claims is None:
        raise AccessRefused(verdict, realm=gate.realm)
    return verdict.claims
