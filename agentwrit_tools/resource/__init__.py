"""Resource-side verification (layer 7 of the design): what the APIs behind the tools use to check a token.

A per-call credential is only as good as the service that checks it. Every check here answers the same four
questions, in this order, and says "no" the way the broker does (RFC 7807 problem JSON, RFC 6750 challenges):

1. Is there exactly one ``Authorization`` token, ``Bearer`` or ``DPoP``? (401 ``unauthorized`` otherwise)
2. Does it verify — signature, expiry, revocation within the verifier's bound, locally or by the broker?
   (401 when not; 403 ``insufficient_scope`` when known revoked; 503 when the broker cannot be reached: closed)
3. Is the presenter its holder? A key-bound token (``cnf.jkt``) needs a fresh proof of possession by its key for
   this method and URL, never seen before (401 with a ``DPoP`` challenge otherwise; see ``_proof``). A resource
   may demand key-bound tokens (``possession="required"``).
4. Do the request's path/query values form a safe scope? (400 ``invalid_request`` for ``*``, ``a:b``, ``%2A``…)
5. Do the *verified* claims cover every required scope? (403 ``insufficient_scope`` otherwise)

Each check yields one :class:`AccessRecord` for the access log (who, which token id, which scope, what outcome;
never the token).

* :func:`require` / :func:`arequire` — plain functions over a ``Verifier``/``Broker`` (or the async twins).
* :class:`Gate`, :class:`RequestFacts`, :func:`decide` / :func:`adecide` — the I/O-free core and its edges, for
  integrating another framework.
* ``agentwrit_tools.resource.fastapi`` — a FastAPI dependency that returns the claims.
* ``agentwrit_tools.resource.asgi`` — pure ASGI middleware (Starlette or any ASGI app); claims in
  ``scope["state"]``.
* ``agentwrit_tools.resource.flask`` — a Flask view decorator; claims in ``flask.g``.
* ``agentwrit_tools.resource.mcp`` — a protected MCP server: each ``tools/call`` checked against the scope rendered
  from its own arguments, with an audience-bound bearer (RFC 9728 metadata, MCP authorization answers).

This package imports no web framework; each integration imports its own.
"""

from __future__ import annotations

from ._access import AccessLog, AccessRecord, Outcome, log_access
from ._edges import (
    AccessRefused,
    AnyVerifier,
    AsyncTokenVerifier,
    SyncTokenVerifier,
    adecide,
    arequire,
    decide,
    require,
)
from ._gate import Gate, Pending, Verdict
from ._problems import PROBLEM_CONTENT_TYPE, Refusal, problem_body, problem_headers
from ._proof import SHARED_REPLAY_CACHE, Possession, ProofRules
from ._request import RequestFacts, Requirement, Source, bearer_token, presented_token, request_id

CLAIMS_KEY = "agentwrit_claims"
"""Where the ASGI middleware (``scope["state"]``) and the Flask decorator (``flask.g``) put the verified claims."""

__all__ = [
    "CLAIMS_KEY",
    "PROBLEM_CONTENT_TYPE",
    "SHARED_REPLAY_CACHE",
    "AccessLog",
    "AccessRecord",
    "AccessRefused",
    "AnyVerifier",
    "AsyncTokenVerifier",
    "Gate",
    "Outcome",
    "Pending",
    "Possession",
    "ProofRules",
    "Refusal",
    "RequestFacts",
    "Requirement",
    "Source",
    "SyncTokenVerifier",
    "Verdict",
    "adecide",
    "arequire",
    "bearer_token",
    "decide",
    "log_access",
    "presented_token",
    "problem_body",
    "problem_headers",
    "request_id",
    "require",
]
