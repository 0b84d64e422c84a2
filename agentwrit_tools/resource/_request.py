"""What a check needs to know about a request, and the two things read from it: the presented token (``Bearer``,
or ``DPoP`` for a key-bound one) and the values that fill the required scope templates.

Framework integrations only translate their request object into :class:`RequestFacts`; every rule about headers
and parameters lives here, once. Values taken from a path or a query string pass the same safe-identifier rule as
a model's tool arguments (:func:`agentwrit_tools.scopes.safe_value`), so ``/records/*``, ``/records/a:b`` and
``/records/%2A`` are refused instead of turning into a wider required scope.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigurationError, UnsafeArgumentError
from ..scopes import ScopeTemplate, render_scopes
from . import _problems as problems
from ._problems import Refusal

__all__ = ["RequestFacts", "Requirement", "Source", "bearer_token", "presented_token", "request_id"]

Source = Literal["path", "query"]

# RFC 6750 b64token; a compact JWS is a subset. Bounded like the client's own shape check.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MAX_TOKEN = 16384
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id(offered: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is sane (as the broker judges it), else 16 fresh hex characters."""
    if offered and _SANE_REQUEST_ID.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


def presented_token(values: Sequence[str]) -> tuple[str, str] | Refusal:
    """``(scheme, token)`` of the one ``Authorization`` header — scheme ``bearer``, or ``dpop`` for a key-bound token
    presented with a proof (RFC 9449) — or why there is none.

    Args:
        values: every ``Authorization`` header the request carried (several are refused: RFC 6750 forbids more
            than one way of presenting a token, and two headers invite two components to disagree).
    """
    if not values or (len(values) == 1 and not values[0]):
        return problems.missing_credentials()
    if len(values) > 1:
        return problems.several_credentials()
    scheme, _, credential = values[0].strip().partition(" ")
    credential = credential.strip()
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop") or not credential:
        return problems.not_bearer()
    if len(credential) > _MAX_TOKEN or not _B64TOKEN.fullmatch(credential):
        return problems.invalid_token("malformed")
    return scheme, credential


def bearer_token(values: Sequence[str]) -> str | Refusal:
    """The token of the one ``Authorization`` header (``Bearer`` or ``DPoP`` scheme), or why there is none."""
    presented = presented_token(values)
    return presented if isinstance(presented, Refusal) else presented[1]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """One request, as far as a check is concerned.

    Attributes:
        authorization: every ``Authorization`` header value, in order.
        path_params: the route's path parameters, already percent-decoded by the framework.
        query: the query string's ``(name, value)`` pairs, decoded, repeats kept.
        params: explicit template values; when given, ``path_params`` and ``query`` are not consulted (the plain
            :func:`~agentwrit_tools.resource.require` uses this).
        method: the HTTP method.
        path: the concrete path (used as the problem's ``instance``).
        route: the route template, for the access log.
        request_id: the request's id (see :func:`request_id`).
        dpop: every ``DPoP`` header value (the proof of possession of a key-bound token), in order.
        url: the URL the request reached, without its query (what a proof's ``htu`` must name); "" when unknown.
    """

    authorization: tuple[str, ...] = field(repr=False)  # holds the token
    path_params: Mapping[str, object] = field(default_factory=dict)
    query: tuple[tuple[str, str], ...] = ()
    params: Mapping[str, object] | None = None
    method: str = ""
    path: str = ""
    route: str = ""
    request_id: str = field(default_factory=lambda: request_id(None))
    dpop: tuple[str, ...] = field(default=(), repr=False)
    url: str = ""


class Requirement:
    """The scopes an operation needs: templates such as ``read:records:{patient_id}``, filled per request.

    Args:
        scopes: one template or several (all are required). At least one: an operation with no scope is a
            configuration error, not an open door.
        sources: where placeholder values may come from, ``"path"`` and/or ``"query"``. A name found in both is
            refused (the handler might read the other one).

    Raises:
        ConfigurationError: no scopes, or an unknown source.
        ScopeError: a template is malformed.
    """

    __slots__ = ("placeholders", "sources", "templates")

    def __init__(self, scopes: str | Sequence[str], *, sources: Sequence[Source] = ("path", "query")) -> None:
        texts = (scopes,) if isinstance(scopes, str) else tuple(scopes)
        if not texts:
            raise ConfigurationError("a protected operation needs at least one scope template")
        unknown = set(sources) - {"path", "query"}
        if unknown or not sources:
            raise ConfigurationError(f"sources must be 'path' and/or 'query', not {sorted(unknown) or 'nothing'}")
        self.templates = tuple(ScopeTemplate.compile(text) for text in texts)
        self.placeholders = tuple(dict.fromkeys(name for t in self.templates for name in t.placeholders))
        self.sources: frozenset[Source] = frozenset(sources)

    @classmethod
    def coerce(cls, value: str | Sequence[str] | Requirement) -> Requirement:
        return value if isinstance(value, Requirement) else cls(value)

    def __repr__(self) -> str:
        return f"Requirement({[t.template for t in self.templates]!r})"

    def render(self, facts: RequestFacts) -> tuple[str, ...] | Refusal:
        """The exact scopes ``facts`` needs, or a 400 refusal naming the unusable parameter (never its value)."""
        arguments = facts.params if facts.params is not None else self._gather(facts)
        if isinstance(arguments, Refusal):
            return arguments
        try:
            return render_scopes(self.templates, arguments)
        except UnsafeArgumentError as exc:
            return problems.bad_parameter(
                f"request parameter {exc.argument!r} cannot be used in a scope: {exc.reason}", "unsafe parameter"
            )

    def _gather(self, facts: RequestFacts) -> dict[str, object] | Refusal:
        arguments: dict[str, object] = {}
        for name in self.placeholders:
            in_path = "path" in self.sources and name in facts.path_params
            in_query = [v for k, v in facts.query if k == name] if "query" in self.sources else []
            if in_path and in_query:
                return problems.bad_parameter(
                    f"request parameter {name!r} is given both in the path and in the query string", "ambiguous"
                )
            if in_path:
                arguments[name] = facts.path_params[name]
            elif len(in_query) == 1:
                arguments[name] = in_query[0]
            elif in_query:
                arguments[name] = tuple(in_query)  # every value must be covered, whichever the handler reads
            else:
                return problems.bad_parameter(f"request parameter {name!r} is missing", "missing parameter")
        return arguments
