"""Pure ASGI middleware: check every request before the app sees it (Starlette, FastAPI or any ASGI app).

Two ways to place it:

* **App-wide, with rules** — ``AccessMiddleware(app, verifier=v, rules=[Rule("/records/{patient_id}",
  "read:records:{patient_id}", methods=["GET"]), Rule("/health", public=True)])``. The middleware matches paths
  itself (``{name}`` is one path segment), first rule wins, and a request no rule matches is refused (403):
  forgetting a route must not leave it open.
* **Per route** — Starlette's ``Route(..., middleware=[Middleware(AccessMiddleware, verifier=v,
  scopes="read:records:{patient_id}")])``: the router has matched already, so the route's own path parameters
  fill the template.

Allowed requests reach the app with the verified claims in ``scope["state"]["agentwrit_claims"]``
(``request.state.agentwrit_claims`` in Starlette; :func:`claims_of` reads it). Refusals are answered here as
RFC 7807 problem JSON; a refused WebSocket handshake is closed with code 1008 (policy violation). A synchronous
verifier runs in a worker thread so the event loop never blocks on the broker.

Nothing here imports a web framework: the middleware speaks raw ASGI.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from ..client import Claims
from ..errors import ConfigurationError
from . import CLAIMS_KEY
from . import _problems as problems
from ._access import DEFAULT, AccessLog, hooks_from
from ._edges import AnyVerifier, adecide
from ._gate import Gate, Verdict, conclude
from ._problems import PROBLEM_CONTENT_TYPE, problem_body, problem_headers
from ._proof import Possession, ProofRules
from ._request import RequestFacts, Requirement, Source, request_id

__all__ = ["AccessMiddleware", "Rule", "claims_of", "facts_from_scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _url(scope: Mapping[str, Any], host: str | None) -> str:
    """The URL the request reached, without its query: scheme, ``Host`` (else the server address), root path and
    path — what a proof of possession names in its ``htu``."""
    if host is None:
        server = scope.get("server")
        if not server:
            return ""
        host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
    scheme = str(scope.get("scheme") or "http")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{host}{scope.get('root_path', '')}{scope.get('path', '')}"


def facts_from_scope(scope: Mapping[str, Any]) -> RequestFacts:
    """What a check needs from an ASGI connection scope (also used by the FastAPI dependency)."""
    authorization: list[str] = []
    dpop: list[str] = []
    offered: str | None = None
    host: str | None = None
    for name, value in scope.get("headers") or ():
        key = name.lower()
        if key == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif key == b"dpop":
            dpop.append(value.decode("latin-1"))
        elif key == b"host" and host is None:
            host = value.decode("latin-1")
        elif key == b"x-request-id" and offered is None:
            offered = value.decode("latin-1")
    state = scope.get("state") or {}
    known = state.get("request_id")  # set by an outer middleware (the broker's own hardening does this)
    query = parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
    return RequestFacts(
        tuple(authorization),
        path_params=dict(scope.get("path_params") or {}),
        query=tuple(query),
        method=str(scope.get("method", "")),
        path=str(scope.get("path", "")),
        route=str(getattr(scope.get("route"), "path", "") or ""),
        request_id=known if isinstance(known, str) and known else request_id(offered),
        dpop=tuple(dpop),
        url=_url(scope, host),
    )


def claims_of(connection: Any) -> Claims:
    """The verified claims the middleware attached: pass a Starlette ``Request``/``WebSocket`` or a raw scope.

    Raises:
        LookupError: the request did not pass through :class:`AccessMiddleware` (or a public rule let it in).
    """
    scope = connection if isinstance(connection, Mapping) else connection.scope
    claims = (scope.get("state") or {}).get(CLAIMS_KEY)
    if not isinstance(claims, Claims):
        raise LookupError("no verified claims on this request: it was not checked by AccessMiddleware")
    return claims


@dataclass(frozen=True)
class Rule:
    """Which scopes requests to a path need.

    Args:
        path: ``/records/{patient_id}``; each ``{name}`` matches one non-empty path segment.
        scopes: template(s) filled from the path parameters (and, by default, the query string).
        methods: the HTTP methods it applies to (None: every method, and WebSocket handshakes). ``GET`` also
            covers ``HEAD``.
        public: let matching requests through unchecked (health checks, docs). Exclusive with ``scopes``.
        sources: where template values may come from.
        possession: proofs of possession on this path (``"auto"``, ``"required"`` or ``ProofRules``); None: the
            middleware's.
    """

    path: str
    scopes: str | Sequence[str] | None = None
    methods: Collection[str] | None = None
    public: bool = False
    sources: Sequence[Source] = ("path", "query")
    possession: ProofRules | Possession | None = None


class _CompiledRule:
    def __init__(self, rule: Rule, hooks: tuple[AccessLog, ...], realm: str | None, proof: ProofRules) -> None:
        if not rule.path.startswith("/"):
            raise ConfigurationError(f"rule path {rule.path!r} must start with '/'")
        if rule.public == (rule.scopes is not None):
            raise ConfigurationError(f"rule {rule.path!r} needs scopes, or public=True (and not both)")
        self.rule = rule
        self.pattern = _compile_path(rule.path)
        self.methods = None if rule.methods is None else frozenset(m.upper() for m in rule.methods)
        if self.methods is not None and "GET" in self.methods:
            self.methods |= {"HEAD"}
        self.gate: Gate | None = None
        if rule.scopes is not None:
            requirement = Requirement(rule.scopes, sources=rule.sources)
            own = proof if rule.possession is None else ProofRules.coerce(rule.possession)
            self.gate = Gate(requirement, access_log=hooks, realm=realm, possession=own)

    def match(self, scope: Scope) -> dict[str, str] | None:
        if self.methods is not None and (scope["type"] != "http" or scope.get("method") not in self.methods):
            return None
        found = self.pattern.fullmatch(str(scope.get("path", "")))
        return None if found is None else found.groupdict()


def _compile_path(path: str) -> re.Pattern[str]:
    literal = _PARAM.sub("", path)
    if "{" in literal or "}" in literal:
        raise ConfigurationError(f"rule path {path!r}: parameters look like {{name}} with a Python identifier")
    parts: list[str] = []
    position = 0
    for found in _PARAM.finditer(path):
        parts.append(re.escape(path[position : found.start()]))
        parts.append(f"(?P<{found.group(1)}>[^/]+)")
        position = found.end()
    parts.append(re.escape(path[position:]))
    try:
        return re.compile("".join(parts))
    except re.error:
        raise ConfigurationError(f"rule path {path!r}: a parameter name is used twice") from None


class AccessMiddleware:
    """Check the bearer token of every HTTP request and WebSocket handshake; see the module docstring.

    Args:
        app: the ASGI app to protect.
        verifier: a ``Verifier``/``Broker`` (run in a worker thread) or an ``AsyncVerifier``/``AsyncBroker``.
        rules: app-wide mode: the rules, first match wins. Exclusive with ``scopes``.
        scopes: per-route mode: the template(s) every request through this middleware needs.
        sources: where template values may come from in per-route mode.
        unmatched: ``deny`` (default) refuses requests no rule matches; ``allow`` passes them unchecked.
        access_log: hooks for access records (default: the logging hook; None: none).
        realm: the ``realm`` of ``WWW-Authenticate`` challenges.
        possession: proofs of possession for every checked request: ``"auto"``, ``"required"`` or
            :class:`~agentwrit_tools.resource.ProofRules` (see :class:`~agentwrit_tools.resource.Gate`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: AnyVerifier,
        rules: Iterable[Rule] | None = None,
        scopes: str | Sequence[str] | None = None,
        sources: Sequence[Source] = ("path", "query"),
        unmatched: Literal["deny", "allow"] = "deny",
        access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
        realm: str | None = None,
        possession: ProofRules | Possession = "auto",
    ) -> None:
        if (rules is None) == (scopes is None):
            raise ConfigurationError("AccessMiddleware needs either rules (app-wide) or scopes (per route)")
        if unmatched not in ("deny", "allow"):
            raise ConfigurationError("unmatched must be 'deny' or 'allow'")
        self.app = app
        self.verifier = verifier
        self.realm = realm
        self.unmatched = unmatched
        self._hooks = hooks_from(access_log)
        proof = ProofRules.coerce(possession)
        self._rules = [_CompiledRule(rule, self._hooks, realm, proof) for rule in rules or ()]
        self._gate = (
            None
            if scopes is None
            else Gate(Requirement(scopes, sources=sources), access_log=self._hooks, realm=realm, possession=proof)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        facts = facts_from_scope(scope)
        if self._gate is not None:
            verdict = await adecide(self.verifier, self._gate, facts)
        else:
            chosen = self._select(scope)
            if chosen is None:
                if self.unmatched == "allow":
                    await self.app(scope, receive, send)
                    return
                verdict = conclude(self._hooks, facts, problems.no_rule(), None)
            else:
                rule, params = chosen
                if rule.gate is None:  # public
                    await self.app(scope, receive, send)
                    return
                facts = dataclasses.replace(facts, path_params=params, route=rule.rule.path)
                verdict = await adecide(self.verifier, rule.gate, facts)
        if verdict.refusal is not None or verdict.claims is None:
            await self._refuse(scope, receive, send, verdict)
            return
        scope.setdefault("state", {})[CLAIMS_KEY] = verdict.claims
        await self.app(scope, receive, send)

    def _select(self, scope: Scope) -> tuple[_CompiledRule, dict[str, str]] | None:
        for rule in self._rules:
            params = rule.match(scope)
            if params is not None:
                return rule, params
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, verdict: Verdict) -> None:
        refusal = verdict.refusal
        if refusal is None:  # pragma: no cover - an allowed verdict without claims cannot be built
            refusal = problems.unavailable("no claims")
        if scope["type"] == "websocket":
            await receive()  # the websocket.connect message; closing before accepting refuses the handshake
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.error_code})
            return
        request = verdict.record.request_id
        body = json.dumps(problem_body(refusal, instance=verdict.record.path, request_id=request)).encode()
        headers = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            *(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in problem_headers(refusal, request_id=request, realm=self.realm).items()
            ),
        ]
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
