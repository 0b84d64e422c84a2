"""Compact JWS with ``EdDSA`` only: the one token format local verification accepts — no I/O.

Written out rather than handed to a general JWT library for two reasons. Safety: nothing but
``{"alg":"EdDSA"}`` with a known ``kid`` reaches a signature check (``none``, HMAC keyed with the public key,
``crit`` extensions are refused while parsing), so there is no algorithm list to get wrong. Cost: a token is
parsed once — header, signature, payload — where the general path parsed the header twice and checked every
character of every segment in Python; the signature check is then most of the work, which is the point of
verifying locally.

Strictness matches the broker's own verifier: segments are canonical unpadded base64url (anything else is malformed),
the header and payload are JSON objects, ``exp``/``nbf``/``iat`` are numbers, ``exp``, ``sub`` and ``jti``
are required. Time claims are checked with ``leeway`` seconds of clock skew, as RFC 7519 suggests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import TokenInvalid

__all__ = ["Jws", "check_times", "parse"]

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_REQUIRED = ("exp", "sub", "jti")


def _b64url(segment: str) -> bytes:
    """Unpadded base64url, canonical only: unused trailing bits set would spell the same bytes a second way (so a
    second token string for one signature)."""
    if len(segment) % 4 == 1 or not _SEGMENT.fullmatch(segment):
        raise TokenInvalid(reason="malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid(reason="malformed") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
        raise TokenInvalid(reason="malformed")
    return raw


def _object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(segment))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenInvalid(reason="malformed") from None
    if not isinstance(value, dict):
        raise TokenInvalid(reason="malformed")
    return value


@dataclass(frozen=True, slots=True)
class Jws:
    """A parsed, not yet verified token: its key id and what the signature covers."""

    kid: str
    signing_input: bytes
    signature: bytes
    payload: str

    def verify(self, key: Ed25519PublicKey) -> dict[str, Any]:
        """The payload, once the signature checks out under ``key``; :class:`TokenInvalid` otherwise."""
        try:
            key.verify(self.signature, self.signing_input)
        except InvalidSignature:
            raise TokenInvalid(reason="signature or claims") from None
        return _object(self.payload)


def _kid(header_segment: str) -> str:
    header = _object(header_segment)
    if header.get("alg") != "EdDSA":
        raise TokenInvalid(reason="algorithm not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenInvalid(reason="no key id")
    if "crit" in header or header.get("typ", "JWT") not in ("JWT", "jwt"):
        raise TokenInvalid(reason="malformed")
    return kid


# One broker key means one header, byte for byte, on every token: accepted headers are remembered (a few).
_accepted_headers: dict[str, str] = {}
_HEADERS_KEPT = 8


def parse(token: str) -> Jws:
    """Split and check the header of a compact JWS; the caller looks up the key by ``kid`` and verifies.

    The payload is only decoded by :meth:`Jws.verify`, after the signature over it checked out.

    Raises:
        TokenInvalid: not three base64url segments, a header that is not ``EdDSA`` with a ``kid``, ``crit``
            extensions, or a signature that is not 64 bytes.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid(reason="malformed")
    header_segment, payload, signature_segment = parts
    kid = _accepted_headers.get(header_segment)
    if kid is None:
        kid = _kid(header_segment)
        if len(_accepted_headers) < _HEADERS_KEPT:
            _accepted_headers[header_segment] = kid
    signature = _b64url(signature_segment)
    if len(signature) != 64:
        raise TokenInvalid(reason="signature or claims")
    if not payload.isascii():
        raise TokenInvalid(reason="malformed")
    return Jws(kid, f"{header_segment}.{payload}".encode("ascii"), signature, payload)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_times(
    claims: dict[str, Any], *, now: float, leeway: float, issuer: str | None, max_ttl: float | None = None
) -> None:
    """Required claims, ``exp``/``nbf``/``iat`` against ``now`` with ``leeway``, ``iss`` when configured, and
    ``exp - iat`` within ``max_ttl`` (the broker's global max TTL: no token it issues lives longer)."""
    for name in _REQUIRED:
        if name not in claims:
            raise TokenInvalid(reason="signature or claims")
    for name in ("exp", "nbf", "iat"):
        if name in claims and not _number(claims[name]):
            raise TokenInvalid(reason="signature or claims")
    if claims["exp"] <= now - leeway:
        raise TokenInvalid(reason="expired")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise TokenInvalid(reason="signature or claims")
    if "iat" in claims and claims["iat"] > now + leeway:
        raise TokenInvalid(reason="signature or claims")
    if max_ttl is not None and "iat" in claims and claims["exp"] - claims["iat"] > max_ttl:
        raise TokenInvalid(reason="signature or claims")
    if issuer is not None and claims.get("iss") != issuer:
        raise TokenInvalid(reason="signature or claims")
