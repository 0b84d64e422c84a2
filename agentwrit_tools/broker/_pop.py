"""Extension: key-bound tokens (proof of possession, RFC 9449 style) — ``cnf.jkt`` names the holder's key.

An agent proves at registration that it holds the private key of the public key it registers (it signs the
broker's nonce). With the extensions on, ``POST /v1/register`` takes an optional ``"key_bound": true``: the
issued token then carries ``cnf: {"jkt": <RFC 7638 thumbprint of that key>}``, and a resource server that sees
``cnf`` accepts the token only with a fresh proof signed by that key (:mod:`agentwrit_tools.pop`). A copy of the
token without the key is worthless.

The binding is kept for the token's lineage:

* a renewal keeps the binding (same agent, same key);
* a token delegated from a bound token is bound to the **delegate's** registered key — the holder changes, so
  the key does too — and an unbound delegator may ask for a bound delegated token with the same flag.

Which key a token was bound to is stored with the token's record (its ``jkt`` column), as resource-bound audiences
are.
With the extensions off the flag is ignored, as the reference broker ignores unknown fields: the client then holds
a plain bearer token, and the official client, which never sends the flag, gets what it always got.

Every key that binds a token passes :func:`agentwrit_tools.ed25519.load_public_key` at the moment it binds one
(registration checked it already; a delegate's stored key is checked again before it is named in a token).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..ed25519 import load_public_key
from ..pop import thumbprint
from ._bodies import opt_bool
from ._problems import Problem

__all__ = ["delegate_binding", "key_thumbprint", "requested_binding"]


def requested_binding(body: dict[str, Any], *, extensions: bool) -> bool:
    """Whether a registration or delegation asks for a key-bound token (False when the extensions are off).

    Raises:
        Problem: 400 when ``key_bound`` is present and not a boolean.
    """
    return extensions and opt_bool(body, "key_bound", False)


def key_thumbprint(public_key_b64: str) -> str:
    """The ``jkt`` for an agent's stored public key (standard base64 of the raw 32 bytes), checked again.

    Raises:
        Problem: 403 ``scope_violation`` when the key is refused (it cannot bind a token).
    """
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
        load_public_key(raw)
    except (binascii.Error, ValueError):
        raise Problem(403, "scope_violation", "the agent's key cannot bind a token") from None
    return thumbprint(raw)


def delegate_binding(bound: str | None, delegate_key_b64: str, body: dict[str, Any], *, extensions: bool) -> str | None:
    """The ``jkt`` of a token delegated from one bound to ``bound`` (None: a bearer delegator): the delegate's key
    when the delegator is bound or the request asks for a bound token; None for a bearer token (and always with
    the extensions off).

    Raises:
        Problem: 400 for a malformed ``key_bound``; 403 when the delegate's key cannot bind a token.
    """
    asked = requested_binding(body, extensions=extensions)
    if not extensions or not (asked or bound is not None):
        return None
    return key_thumbprint(delegate_key_b64)
