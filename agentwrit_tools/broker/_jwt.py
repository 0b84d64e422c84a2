"""Compact JWS with EdDSA only: the one token format the broker issues and accepts.

Written out rather than delegated to a general JWT library so that nothing but ``{"alg":"EdDSA"}`` signed by
*our* key can ever verify: ``alg: none``, HS256 keyed with the public key and foreign ``kid`` values are all
refused before any signature check runs. Verification also checks every claim the broker relies on, so callers
get either a fully typed claim set or :class:`TokenInvalid` — never a half-checked dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ._keys import SigningKey, b64url_decode, b64url_encode

__all__ = [
    "IAT_LEEWAY",
    "MAX_TOKEN_LENGTH",
    "TokenInvalid",
    "check_lifetime",
    "decode_unverified_header",
    "encode",
    "kid_of",
    "verify",
]

# Far above any token we issue (a depth-5 chain is ~3 KiB), small enough to bound the work a stranger can cause.
# Both sides refuse longer tokens, so the broker also refuses to *issue* one (see BrokerCore.mint).
MAX_TOKEN_LENGTH = 16 * 1024
# Seconds an ``iat`` may lie ahead of our clock (a sibling replica's clock running slightly fast).
IAT_LEEWAY = 5


class TokenInvalid(Exception):
    """The token is forged, malformed, expired or not yet valid. The reason is for logs, never for clients."""


def encode(claims: dict[str, Any], key: SigningKey) -> str:
    """Sign ``claims`` into a compact JWS with header ``{"alg":"EdDSA","typ":"JWT","kid":...}``."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": key.kid}
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    )
    return signing_input + "." + b64url_encode(key.sign(signing_input.encode("ascii")))


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise TokenInvalid("segment is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise TokenInvalid("segment is not a JSON object")
    return value


def decode_unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, unverified: to pick the key by ``kid``, and for diagnostics and tests."""
    return _json_object(token.split(".", 1)[0])


def kid_of(token: str) -> object:
    """The ``kid`` a token's header names (unverified), or None when the header does not parse."""
    try:
        return decode_unverified_header(token).get("kid")
    except TokenInvalid:
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_claims(
    claims: dict[str, Any], now: float, issuer: str, audience: list[str] | None, max_ttl: int | None
) -> None:
    for name in ("exp", "nbf", "iat"):
        if not _is_int(claims.get(name)):
            raise TokenInvalid(f"claim {name} missing or not an integer")
    for name in ("sub", "jti", "iss"):
        if not isinstance(claims.get(name), str):
            raise TokenInvalid(f"claim {name} missing or not a string")
    scope = claims.get("scope")
    if not isinstance(scope, list) or not all(isinstance(item, str) for item in scope):
        raise TokenInvalid("claim scope missing or not a list of strings")
    for name in ("task_id", "orch_id", "sid", "chain_hash"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenInvalid(f"claim {name} is not a string")
    if "aud" in claims and not (
        isinstance(claims["aud"], list) and all(isinstance(item, str) for item in claims["aud"])
    ):
        raise TokenInvalid("claim aud is not a list of strings")
    chain = claims.get("delegation_chain")
    if chain is not None and not (isinstance(chain, list) and all(isinstance(rec, dict) for rec in chain)):
        raise TokenInvalid("claim delegation_chain is not a list of records")
    if claims["iss"] != issuer:
        raise TokenInvalid("foreign issuer")
    # A sibling deployment may share the key and the issuer but serve another audience: its tokens are not ours
    # (and renewing one here would re-issue it for our audience). No audience configured: we issue no aud claim.
    if audience is None:
        if "aud" in claims:
            raise TokenInvalid("foreign audience")
    elif not set(claims.get("aud") or ()) & set(audience):
        raise TokenInvalid("foreign audience")
    # Nothing we issue is dated ahead or lives longer than the max TTL: such a token was not made by our rules.
    if claims["iat"] > now + IAT_LEEWAY:
        raise TokenInvalid("issued in the future")
    if max_ttl is not None and claims["exp"] - claims["iat"] > max_ttl:
        raise TokenInvalid("lifetime beyond the max TTL")
    check_lifetime(claims, now)


def check_lifetime(claims: dict[str, Any], now: float) -> None:
    """``exp`` and ``nbf`` against ``now``: the only checks whose outcome changes for an already verified token."""
    if claims["exp"] <= now:
        raise TokenInvalid("expired")
    if claims["nbf"] > now:
        raise TokenInvalid("not yet valid")


def verify(
    token: object,
    key: SigningKey | Callable[[object], SigningKey | None],
    *,
    now: float,
    issuer: str,
    audience: list[str] | None = None,
    max_ttl: int | None = None,
) -> dict[str, Any]:
    """Verify a compact JWS issued by this broker and return its claims.

    ``max_ttl`` bounds ``exp - iat`` (the broker's global max TTL); ``iat`` may not lie ahead of ``now``.

    Raises:
        TokenInvalid: anything at all is wrong; callers answer with a generic message.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("not a token-sized string")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("not a compact JWS")
    header = _json_object(parts[0])
    # Refuse every algorithm but ours before looking at the signature: this is what stops alg-confusion attacks.
    if header.get("alg") != "EdDSA":
        raise TokenInvalid("algorithm not accepted")
    # ``key``: the one key, or a lookup by the header's ``kid`` (None: unknown or retired key).
    found = key if isinstance(key, SigningKey) else key(header.get("kid"))
    if found is None or header.get("typ", "JWT") != "JWT" or header.get("kid") != found.kid or "crit" in header:
        raise TokenInvalid("header not accepted")
    key = found
    try:
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise TokenInvalid("signature is not base64url") from exc
    if len(signature) != 64 or not key.verify(signature, (parts[0] + "." + parts[1]).encode("utf-8")):
        raise TokenInvalid("bad signature")
    claims = _json_object(parts[1])
    _check_claims(claims, now, issuer, audience, max_ttl)
    return claims
