"""Extension: resource-bound tokens (RFC 8707 style) — ``aud`` set per token instead of from configuration.

In the wire contract ``aud`` comes from broker configuration (``AA_AUDIENCE``): every token a deployment issues
names the same audience. A token meant for one MCP server should name *that* server, so another server refuses
it. With the extensions on, ``POST /v1/register`` takes an optional ``audience`` (a resource URL): the issued
token's ``aud`` is exactly ``[audience]``. The binding is permanent for the token's lineage: a renewal keeps it,
and a token delegated from a bound one keeps it too (the contract already says a delegated token's ``aud`` is
its delegator's). With the extensions off the field is ignored, as the reference broker ignores unknown fields,
and the client's gate on the verified ``aud`` refuses the credential; a deployment that needs audience binding
against the reference broker configures ``AA_AUDIENCE`` with the resource server's URL instead.

The broker must still accept its own bound tokens (to release, renew or delegate them) although their ``aud``
is not its configured audience. Which audience each bound token was issued for is recorded by ``jti``; a token
whose ``aud`` does not match the configuration is accepted only when this broker recorded issuing it for exactly
that audience (the signature is checked either way). A sibling deployment sharing the key cannot use this: its
``jti`` values are not in our records.
"""

from __future__ import annotations

import json
from typing import Any

from .._audience import resource_problem
from ._keys import b64url_decode
from ._problems import Problem, bad_request
from ._store import Store

__all__ = ["delegated_audience", "expected_audience", "requested_audience"]


def requested_audience(body: dict[str, Any], *, extensions: bool) -> str | None:
    """The ``audience`` a registration asks for, validated; None when absent or when the extensions are off.

    Raises:
        Problem: 400 ``invalid_request`` for a value that is not a resource URL.
    """
    if not extensions or body.get("audience") is None:
        return None
    value = body["audience"]
    problem = resource_problem(value)
    if problem is not None:
        raise bad_request(f"field 'audience': {problem}")
    return str(value)


def delegated_audience(bound: str | None, body: dict[str, Any], *, extensions: bool) -> str | None:
    """The audience of a token delegated from one bound to ``bound`` (None: unbound), given the request body.

    Raises:
        Problem: 400 for a malformed ``audience``; 403 ``scope_violation`` for a bound delegator asking for
            another resource (the caller audits it).
    """
    wanted = requested_audience(body, extensions=extensions)
    if wanted is not None and bound is not None and wanted != bound:
        raise Problem(403, "scope_violation", "a token bound to one resource cannot be delegated for another")
    return bound or wanted


def _unverified_jti(token: str) -> str | None:
    """The ``jti`` of a token's payload, unverified: only to look up which audience to verify it against."""
    try:
        payload = json.loads(b64url_decode(token.split(".")[1]))
    except (IndexError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    jti = payload.get("jti") if isinstance(payload, dict) else None
    return jti if isinstance(jti, str) else None


async def expected_audience(store: Store, token: str) -> list[str] | None:
    """The audience to verify ``token`` against when this broker issued it bound to a resource, else None."""
    jti = _unverified_jti(token)
    if jti is None:
        return None
    async with store.reader() as tx:
        bound = await tx.audience_of(jti)
    return None if bound is None else [bound]
