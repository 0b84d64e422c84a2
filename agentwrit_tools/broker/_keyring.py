"""Private keys sealed at rest with a secret the operator keeps out of the database (``AGENTWRIT_KEYRING_SECRET``).

File permissions keep other users out; sealing keeps the key safe from whoever gets a copy of the database (a
backup, a replica's volume, a support bundle). A sealed value is AES-256-GCM under a key derived from the secret
by scrypt with a fresh salt, and the ciphertext is bound to what it holds (associated data), so a sealed value
cannot be moved to another slot::

    sealed$1$<n>$<r>$<p>$<salt b64>$<nonce b64>$<ciphertext b64>

Derivation is slow on purpose (tens of milliseconds, once per start): the secret may be a passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError

__all__ = ["ENV_KEYRING_SECRET", "Keyring", "is_sealed"]

ENV_KEYRING_SECRET = "AGENTWRIT_KEYRING_SECRET"  # noqa: S105 - the name of a variable, not a secret
_PREFIX = "sealed$1$"
_N, _R, _P = 2**15, 8, 1


def is_sealed(value: str) -> bool:
    """True when ``value`` was written by :meth:`Keyring.seal`."""
    return value.startswith(_PREFIX)


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=128 * 1024 * 1024
    )


class Keyring:
    """Seals and opens secrets with the operator's keyring secret (never stored, never logged)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        if not secret or "\x00" in secret:
            raise ConfigurationError(f"{ENV_KEYRING_SECRET} must be a non-empty text without NUL characters")
        self._secret = secret

    def __repr__(self) -> str:
        return "Keyring(<secret>)"

    def secret_bytes(self) -> bytes:
        """The secret as the password of an encrypted PEM file (PKCS#8 derives its own key from it)."""
        return self._secret.encode("utf-8", "surrogatepass")

    def seal(self, plaintext: bytes, *, purpose: str) -> str:
        """Encrypt ``plaintext`` for the slot named ``purpose`` (e.g. ``signing key``)."""
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        sealed = AESGCM(_derive(self._secret, salt, _N, _R, _P)).encrypt(nonce, plaintext, purpose.encode())
        parts = [base64.b64encode(part).decode("ascii") for part in (salt, nonce, sealed)]
        return _PREFIX + "$".join([str(_N), str(_R), str(_P), *parts])

    def open(self, value: str, *, purpose: str) -> bytes:
        """Decrypt what :meth:`seal` wrote for ``purpose``.

        Raises:
            ConfigurationError: a wrong secret, a damaged value, or one sealed for another purpose (one line,
                naming the variable, never the secret).
        """
        try:
            n, r, p, salt, nonce, sealed = value.removeprefix(_PREFIX).split("$")
            key = _derive(self._secret, base64.b64decode(salt), int(n), int(r), int(p))
            return AESGCM(key).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), purpose.encode())
        except (ValueError, InvalidTag):
            raise ConfigurationError(
                f"{ENV_KEYRING_SECRET} does not open the {purpose} stored by the broker (wrong secret?)"
            ) from None
