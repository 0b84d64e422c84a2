"""A protected MCP server: every ``tools/call`` needs a bearer that is valid, unrevoked, bound to this server and
covers the scope rendered from that call's own arguments (``pip install 'agentwrit-tools[mcp]'``).

::

    server = MCPServer("records")            # the official SDK's server (FastMCP in mcp 1.x)

    @server.tool()
    def get_record(patient_id: str) -> dict: ...

    verifier = Verifier(broker_url, client_id=..., client_secret=...)   # its own app: reads the revocation feed
    app = protect(server, verifier=verifier, resource="https://records.example/mcp",
                  scopes={"get_record": "read:records:{patient_id}"})
    uvicorn.run(app)                          # streamable HTTP at /mcp

:func:`protect` wraps the server's streamable-HTTP app in a pure ASGI layer that reads each JSON-RPC message
before the server does:

* ``tools/call`` of a tool with a scope mapping: the call's arguments fill the tool's templates (each value must
  be a plain identifier, as everywhere), the bearer is verified by the configured verifier — signature, expiry,
  revocation within its bound — and must carry this server's resource URL in ``aud`` (RFC 8707 audience
  binding: a token minted for another server, or for no server in particular, is refused), and its verified
  scopes must cover the rendered ones. So a token taken from one call and replayed on another tool or with
  other arguments is refused: it covers exactly the call it was minted for.
* ``tools/call`` of a tool with no mapping: refused (403), never run — forgetting a tool must not leave it open.
* Discovery and session plumbing (``initialize``, ``server/discover``, ``ping``, ``tools/list``, notifications,
  responses to the server's own requests) pass without a token: they run no tool. Every other method
  (resources, prompts, completions, tasks…) is refused unless named in ``open_methods``.

Refusals follow the MCP authorization spec: 401 with ``WWW-Authenticate: Bearer … resource_metadata="…"``
pointing at this server's OAuth protected-resource metadata (RFC 9728, served at
``/.well-known/oauth-protected-resource`` and at the path-suffixed form for a resource with a path); 403
``insufficient_scope`` naming the needed scope in the challenge; 400 for arguments that cannot form a scope; 503
when the token cannot be verified (closed). The body is a JSON-RPC error for the request, so an MCP client shows
the reason; it never holds token text.

An allowed call reaches the server *without* its ``Authorization`` header: the server never passes a caller's
token on (a tool cannot forward what it never sees). The verified claims are in the request state
(``CLAIMS_KEY``); :func:`claims_of` reads them from a tool's ``Context``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .._audience import resource_problem
from ..client import Claims
from ..errors import ConfigurationError, TokenInvalid
from ..pop import ALGORITHM
from . import CLAIMS_KEY
from . import _problems as problems
from ._access import DEFAULT, AccessLog, hooks_from
from ._edges import AnyVerifier, _verify, adecide
from ._gate import Gate, Verdict, conclude
from ._problems import Refusal, _quoted
from ._proof import Possession, ProofRules
from ._request import Requirement
from .asgi import facts_from_scope

__all__ = ["METADATA_PATH", "OPEN_METHODS", "ProtectedMCP", "claims_of", "protect"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METADATA_PATH = "/.well-known/oauth-protected-resource"
OPEN_METHODS: frozenset[str] = frozenset({"initialize", "server/discover", "ping", "tools/list"})
"""Methods answered without a token (notifications and responses pass too): none of them runs a tool."""
MAX_BODY = 1024 * 1024
_AUTH_ERROR = -32001  # JSON-RPC server-defined range: the request was refused for want of authority


class _BoundVerifier:
    """The configured verifier, plus the audience check: this server's resource URL must be in ``aud``."""

    def __init__(self, verifier: AnyVerifier, resource: str) -> None:
        self._verifier = verifier
        self._resource = resource

    async def verify(self, token: str) -> Claims:
        claims = await _verify(self._verifier, token)
        if self._resource not in claims.aud:
            raise TokenInvalid(reason="audience")
        return claims


def _metadata_paths(resource: str) -> tuple[str, ...]:
    path = urlsplit(resource).path.rstrip("/")
    return (METADATA_PATH, METADATA_PATH + path) if path else (METADATA_PATH,)


def _metadata_url(resource: str) -> str:
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{_metadata_paths(resource)[-1]}"


class ProtectedMCP:
    """The ASGI app :func:`protect` returns; see the module docstring.

    Attributes:
        app: the wrapped streamable-HTTP app.
        resource: this server's resource URL (the ``aud`` every accepted token carries).
        metadata: the protected-resource metadata document (RFC 9728).
        gates: the scope requirement of each mapped tool.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: AnyVerifier,
        resource: str,
        scopes: Mapping[str, str | Sequence[str]],
        path: str,
        authorization_servers: Sequence[str],
        open_methods: Collection[str],
        access_log: AccessLog | Iterable[AccessLog] | None,
        realm: str | None,
        name: str | None,
        possession: ProofRules | Possession = "auto",
    ) -> None:
        problem = resource_problem(resource)
        if problem is not None:
            raise ConfigurationError(f"resource: {problem}")
        if not callable(getattr(verifier, "verify", None)):
            raise ConfigurationError("verifier must have a verify(token) method (a Verifier, AsyncVerifier or Broker)")
        if not isinstance(scopes, Mapping):
            raise ConfigurationError('scopes must map tool names to scope templates, e.g. {"get_record": "..."}')
        self.app = app
        self.resource = resource
        self.path = path
        self.realm = realm
        self.open_methods = frozenset(open_methods)
        self._verifier = _BoundVerifier(verifier, resource)
        hooks = hooks_from(access_log)
        self._hooks = hooks
        self.gates: dict[str, Gate] = {}
        proof = ProofRules.coerce(possession)
        for tool, templates in scopes.items():
            try:
                self.gates[tool] = Gate(Requirement(templates), access_log=hooks, realm=realm, possession=proof)
            except (ConfigurationError, ValueError) as exc:
                raise ConfigurationError(f"tool {tool!r}: {exc}") from exc
        self.metadata: dict[str, Any] = {
            "resource": resource,
            "bearer_methods_supported": ["header"],
            "scopes_supported": sorted({t for templates in scopes.values() for t in _texts(templates)}),
            "dpop_signing_alg_values_supported": [ALGORITHM],
        }
        if proof.required:
            self.metadata["dpop_bound_access_tokens_required"] = True
        if authorization_servers:
            self.metadata["authorization_servers"] = list(authorization_servers)
        if name:
            self.metadata["resource_name"] = name
        self._metadata_paths = _metadata_paths(resource)
        self.metadata_url = _metadata_url(resource)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan: the server's session manager starts here
            return
        if scope["path"] in self._metadata_paths and scope.get("method") in ("GET", "HEAD"):
            await _json(send, 200, self.metadata, [(b"cache-control", b"max-age=300")])
            return
        if scope["path"].rstrip("/") != self.path.rstrip("/") or scope.get("method") != "POST":
            await self._pass(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _json(send, 413, _rpc_error(None, "the request body is too large", {"status": 413}))
            return
        verdict = await self._check(scope, body)
        if verdict is not None and (verdict.refusal is not None or verdict.claims is None):
            await self._refuse(send, verdict, _request_id(body))
            return
        if verdict is not None:
            scope.setdefault("state", {})[CLAIMS_KEY] = verdict.claims
        await self._pass(scope, _replay(body, receive), send)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request on without its Authorization (or DPoP) header: the server never sees (or forwards) a
        token or a proof."""
        headers = [(k, v) for k, v in scope.get("headers") or () if k.lower() not in (b"authorization", b"dpop")]
        await self.app({**scope, "headers": headers}, receive, send)

    async def _check(self, scope: Scope, body: bytes) -> Verdict | None:
        """The verdict for a ``tools/call`` (or a refused method); None when the message needs no token."""
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return None  # the server answers a parse error itself
        facts = facts_from_scope(scope)
        if isinstance(message, list):  # JSON-RPC batches: nothing in them may escape the check
            if any(isinstance(item, dict) and "method" in item for item in message):
                return conclude(self._hooks, facts, _refused("batched requests are not accepted here"), None)
            return None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return None  # a response to the server's own request, or something the server will refuse
        method = message["method"]
        if method.startswith("notifications/") or method in self.open_methods:
            return None
        if method != "tools/call":
            return conclude(self._hooks, facts, _refused(f"method {method[:64]!r} is not open on this server"), None)
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        arguments = params.get("arguments") if isinstance(params, dict) else None
        if not isinstance(name, str):
            return conclude(self._hooks, facts, problems.bad_parameter("tools/call needs a tool name", "no name"), None)
        gate = self.gates.get(name)
        if gate is None:
            refusal = _refused(f"tool {name[:64]!r} has no scope mapping on this server and cannot be called")
            return conclude(self._hooks, dataclasses.replace(facts, route=f"tools/call {name[:64]}"), refusal, None)
        facts = dataclasses.replace(
            facts, params=arguments if isinstance(arguments, dict) else {}, route=f"tools/call {name}"
        )
        return await adecide(self._verifier, gate, facts)

    async def _refuse(self, send: Send, verdict: Verdict, rpc_id: Any) -> None:
        refusal = verdict.refusal or problems.unavailable("no claims")
        headers = [(b"cache-control", b"no-store"), (b"x-request-id", verdict.record.request_id.encode("latin-1"))]
        challenge = self._challenge(refusal)
        if challenge is not None:
            headers.append((b"www-authenticate", challenge.encode("latin-1")))
        data = {"status": refusal.status, "error_code": refusal.error_code}
        if refusal.scope:
            data["scope"] = " ".join(refusal.scope)
        await _json(send, refusal.status, _rpc_error(rpc_id, refusal.detail, data), headers)

    def _challenge(self, refusal: Refusal) -> str | None:
        challenge = refusal.challenge(self.realm)
        if challenge is None:
            return None
        link = f"resource_metadata={_quoted(self.metadata_url)}"
        return f"{challenge} {link}" if challenge in ("Bearer", "DPoP") else f"{challenge}, {link}"


def _texts(templates: str | Sequence[str]) -> tuple[str, ...]:
    return (templates,) if isinstance(templates, str) else tuple(templates)


def _refused(detail: str) -> Refusal:
    return Refusal(
        403, "insufficient_scope", detail, "insufficient_scope", "not allowed", bearer_error="insufficient_scope"
    )


def _request_id(body: bytes) -> Any:
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    rpc_id = message.get("id") if isinstance(message, dict) else None
    return rpc_id if isinstance(rpc_id, (str, int)) and not isinstance(rpc_id, bool) else None


def _rpc_error(rpc_id: Any, message: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rpc_id, "error": {"code": _AUTH_ERROR, "message": message, "data": data}}


async def _json(send: Send, status: int, document: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(document).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when it is over :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives the body once, then whatever the connection says (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def claims_of(context: Any) -> Claims:
    """The verified claims of the call a tool is running for: pass the tool's MCP ``Context`` (or a request).

    Raises:
        LookupError: the call did not come through :func:`protect`.
    """
    request = getattr(getattr(context, "request_context", None), "request", None) or context
    state = getattr(request, "scope", {}).get("state") or {}
    claims = state.get(CLAIMS_KEY)
    if not isinstance(claims, Claims):
        raise LookupError("no verified claims on this call: the server is not behind protect()")
    return claims


def protect(
    server: Any,
    *,
    verifier: AnyVerifier,
    resource: str,
    scopes: Mapping[str, str | Sequence[str]],
    path: str = "/mcp",
    authorization_servers: Sequence[str] = (),
    open_methods: Collection[str] = OPEN_METHODS,
    access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
    realm: str | None = None,
    possession: ProofRules | Possession = "auto",
    **app_options: Any,
) -> ProtectedMCP:
    """Put an MCP server's tools behind per-call, audience-bound credentials.

    Args:
        server: an ``MCPServer`` (its streamable-HTTP app is built here, with ``app_options``) or an ASGI app
            serving streamable HTTP at ``path``.
        verifier: a :class:`~agentwrit_tools.client.Verifier` / ``AsyncVerifier`` (or a broker client): how
            tokens are verified — locally with the revocation feed, or by the broker.
        resource: this server's resource URL, exactly as clients address it (``https://host/mcp``); tokens
            must carry it in ``aud``.
        scopes: tool name → scope template(s) over the tool's arguments. Unmapped tools are refused.
        path: where the streamable-HTTP endpoint is.
        authorization_servers: advertised in the metadata (the broker's URL).
        open_methods: JSON-RPC methods answered without a token (default :data:`OPEN_METHODS`).
        access_log: hooks for one access record per checked call (default: one INFO log line).
        realm: the ``realm`` of challenges.
        possession: proofs of possession: ``"auto"`` (a key-bound token needs its proof), ``"required"`` (only
            key-bound tokens; advertised as ``dpop_bound_access_tokens_required``) or ``ProofRules``.

    Raises:
        ConfigurationError: a bad resource URL, verifier or scope template.
    """
    build = getattr(server, "streamable_http_app", None)
    app: ASGIApp = build(streamable_http_path=path, **app_options) if callable(build) else server
    if not callable(app):
        raise ConfigurationError("server must be an MCPServer or an ASGI app")
    return ProtectedMCP(
        app,
        verifier=verifier,
        resource=resource,
        scopes=scopes,
        path=path,
        authorization_servers=authorization_servers,
        open_methods=open_methods,
        access_log=access_log,
        realm=realm,
        possession=possession,
        name=getattr(server, "name", None),
    )
