"""The broker's Ed25519 signing key: created once, then reused across restarts.

The key must survive restarts, or every token issued before a restart would stop verifying. It lives either in
the SQLite database (the default, so one file holds all state) or in a PEM file named by the settings (so an
operator can manage it apart from the data). Its ``kid`` is the RFC 7638 thumbprint of the public JWK, which
lets anyone recompute it from the published key (extension: ``GET /.well-known/jwks.json``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigurationError

__all__ = ["SigningKey", "b64url_decode", "b64url_encode", "jwk_thumbprint", "load_or_create_key"]

_META_KEY = "signing_key"


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JOSE wants it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url decoding (no padding, no foreign characters).

    Raises:
        ValueError: the text is not base64url.
    """
    if not isinstance(text, str) or text.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise ValueError("not base64url")
    if len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an OKP/Ed25519 public key: SHA-256 over the required members in lexical order."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


class SigningKey:
    """An Ed25519 key pair plus the identifiers published for it."""

    __slots__ = ("_private", "_public", "kid", "public_raw", "x")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._public: Ed25519PublicKey = private.public_key()
        self.public_raw = self._public.public_bytes_raw()
        self.x = b64url_encode(self.public_raw)
        self.kid = jwk_thumbprint(self.x)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``data``."""
        try:
            self._public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (never the private part)."""
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def private_raw(self) -> bytes:
        return self._private.private_bytes_raw()


def _from_pem_file(path: Path) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the signing key file {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(f"the signing key file {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"the signing key file {path} does not hold an Ed25519 key")
    return SigningKey(key)


def _create_pem_file(path: Path) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key another process created a moment ago; 0600: the key is a secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _from_pem_file(path)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the signing key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return SigningKey(private)


def load_or_create_key(conn: sqlite3.Connection, key_path: Path | None) -> SigningKey:
    """Return the broker's key, generating and persisting it on first start.

    Args:
        conn: the broker database (holds the key when ``key_path`` is ``None``).
        key_path: a PEM file to use instead of the database.
    """
    if key_path is not None:
        return _from_pem_file(key_path) if key_path.exists() else _create_pem_file(key_path)
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
    if row is not None:
        return SigningKey(Ed25519PrivateKey.from_private_bytes(base64.b64decode(row[0])))
    key = SigningKey(Ed25519PrivateKey.generate())
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
        (_META_KEY, base64.b64encode(key.private_raw()).decode("ascii")),
    )
    # Another process may have won the race on the same file: always use what is stored.
    stored = conn.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
    return SigningKey(Ed25519PrivateKey.from_private_bytes(base64.b64decode(stored[0])))
