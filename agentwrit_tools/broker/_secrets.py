"""Hashing and comparing the secrets the broker is given, and minting the ones it hands out.

Two kinds of secret, two treatments:

* The admin secret may be chosen by a human, so it is stored as a salted scrypt hash (slow on purpose, run in a
  worker thread by the HTTP layer so it never stalls the event loop).
* App client secrets and launch tokens are 256-bit random values we generate; a plain SHA-256 is already
  infeasible to invert for them, and it keeps app authentication and registration fast.

Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = [
    "hash_admin_secret",
    "random_hex",
    "sha256_hex",
    "verify_admin_secret",
    "verify_sha256",
]

# n=2**14, r=8, p=1: about 16 MiB and tens of milliseconds per attempt: fine for a login, costly for guessing.
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


def random_hex(nbytes: int) -> str:
    return secrets.token_hex(nbytes)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def verify_sha256(candidate: str, stored_hex: str) -> bool:
    return hmac.compare_digest(sha256_hex(candidate), stored_hex)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=64 * 1024 * 1024
    )


def hash_admin_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64 parts): self-describing, so parameters can be raised later."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, _N, _R, _P)
    return "$".join(
        ["scrypt", str(_N), str(_R), str(_P), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()]
    )


def verify_admin_secret(candidate: str, stored: str) -> bool:
    """True when ``candidate`` is the secret behind ``stored``; malformed records never match.

    A candidate holding NUL never matches: scrypt keys HMAC with the secret, and HMAC pads a key with zero bytes,
    so ``"s"`` and ``"s\\0"`` would derive the same hash — two spellings of one secret. (Configured secrets cannot
    hold NUL either; see the settings.)
    """
    if "\x00" in candidate:
        return False
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        actual = _scrypt(candidate, salt, int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
