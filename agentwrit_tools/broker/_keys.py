"""The broker's Ed25519 signing keys: stored with the rest of the state, shared by every replica, rotated.

Keys must survive restarts and be the same on every replica, or tokens would stop verifying. They live in the
store's ``signing_keys`` rows (the default; :mod:`._keyset` loads and rotates them) or, for a single SQLite broker,
in one PEM file named by the settings (so an operator can manage it apart from the data; no rotation then). With
a keyring secret configured a key is stored sealed in either place (:mod:`._keyring`; an encrypted PKCS#8 PEM for
the file), and a key found unsealed is sealed on start. Its ``kid`` is the RFC 7638 thumbprint of the public JWK,
which lets anyone recompute it from the published key (extension: ``GET /.well-known/jwks.json``).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigurationError
from ..pop import thumbprint
from ._keyring import ENV_KEYRING_SECRET, Keyring

__all__ = ["SigningKey", "b64url_decode", "b64url_encode", "jwk_thumbprint", "key_from_file"]


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JOSE wants it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url decoding: no padding, no foreign characters, and canonical.

    Canonical means re-encoding gives the same text back. The last character of a segment may carry unused
    bits; a decoder that ignores them accepts several spellings of one signature, i.e. a second token string
    (with the same ``jti``) that a cache or a deny-list keyed on the text would not recognise.

    Raises:
        ValueError: the text is not canonical base64url.
    """
    if not isinstance(text, str) or text.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
        raise ValueError("not base64url")
    if len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an OKP/Ed25519 public key given by its JWK ``x`` (see ``agentwrit_tools.pop``)."""
    return thumbprint(b64url_decode(x))


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


def _from_pem_file(path: Path, keyring: Keyring | None) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the signing key file {path}: {exc.strerror}") from None
    encrypted = b"ENCRYPTED" in data
    password: bytes | None = None
    if encrypted:
        if keyring is None:
            raise ConfigurationError(f"the signing key file {path} is encrypted: set {ENV_KEYRING_SECRET}")
        password = keyring.secret_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError):
        if encrypted:
            raise ConfigurationError(f"{ENV_KEYRING_SECRET} does not open the signing key file {path}") from None
        raise ConfigurationError(f"the signing key file {path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"the signing key file {path} does not hold an Ed25519 key")
    if keyring is not None and not encrypted:
        _write_pem(path, key, keyring, replace=True)  # a keyring is configured: the key is stored sealed
    return SigningKey(key)


def _pem(private: Ed25519PrivateKey, keyring: Keyring | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if keyring is None
        else serialization.BestAvailableEncryption(keyring.secret_bytes())
    )
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write_pem(path: Path, private: Ed25519PrivateKey, keyring: Keyring | None, *, replace: bool) -> bool:
    """Write the key 0600; ``replace`` rewrites an existing file atomically. False when another process won the
    race to create it."""
    target = path.with_name(path.name + ".tmp") if replace else path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if replace:
            target.unlink(missing_ok=True)
        # O_EXCL: never overwrite a key another process created a moment ago; 0600: the key is a secret.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigurationError(f"cannot write the signing key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(_pem(private, keyring))
    if replace:
        os.replace(target, path)
    return True


def _create_pem_file(path: Path, keyring: Keyring | None) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    if not _write_pem(path, private, keyring, replace=False):
        return _from_pem_file(path, keyring)
    return SigningKey(private)


def key_from_file(path: Path, keyring: Keyring | None) -> SigningKey:
    """The broker's key from a PEM file, created (0600) on first start.

    Raises:
        ConfigurationError: an unusable key file, an encrypted one without a keyring, or a keyring that does not
            open it.
    """
    return _from_pem_file(path, keyring) if path.exists() else _create_pem_file(path, keyring)
