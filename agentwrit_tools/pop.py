"""Proof of possession: a token bound to a key, and the per-request proof that its presenter holds that key. No I/O.

A bearer token works for whoever holds the string: a copy out of a tool's log or an HTTP hop is as good as the
original for the seconds it lives. A *key-bound* token names a public key in its ``cnf`` claim (``{"jkt": <RFC
7638 thumbprint>}``) and is accepted only together with a fresh proof signed by the matching private key — the
per-call agent key the client generated for the broker's challenge, which never leaves the caller. A stolen token
without the key is worthless.

The proof follows RFC 9449 (DPoP) with Ed25519: a compact JWS whose header is ``{"typ": "dpop+jwt", "alg":
"EdDSA", "jwk": <the public key>}`` and whose claims bind it to one request — ``htm`` (the method), ``htu`` (the
URL without query or fragment), ``iat`` (when), ``jti`` (a unique id, so it can be used once) and ``ath`` (the
hash of the access token it accompanies). The request carries ``Authorization: DPoP <token>`` and ``DPoP:
<proof>``.

This module is shared by the three parties: the client makes proofs (:func:`make_proof`), the broker computes the
thumbprint it binds (:func:`thumbprint`), the resource helpers check proofs (:func:`check_proof`) and keep the
:class:`ReplayCache`. A proof's key is first compared with the token's ``jkt`` (a hash: a foreign key is refused
without any curve arithmetic), then goes through :mod:`agentwrit_tools.ed25519` (small-order and non-canonical keys
refused) like every other key that binds a token — keys that passed are remembered (a bounded cache), since a
credential presents its one key with each of its requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .ed25519 import PUBLIC_KEY_SIZE, load_public_key
from .errors import AgentWritError

__all__ = [
    "ALGORITHM",
    "MAX_PROOF_LENGTH",
    "PROOF_TYPE",
    "Proof",
    "ProofInvalid",
    "ReplayCache",
    "access_token_hash",
    "check_proof",
    "key_thumbprint",
    "make_proof",
    "public_jwk",
    "target_uri",
    "thumbprint",
]

ALGORITHM = "EdDSA"
PROOF_TYPE = "dpop+jwt"
MAX_PROOF_LENGTH = 4096
"""Longer ``DPoP`` header values are refused before anything is decoded (a real proof is about 400 bytes)."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_JTI = re.compile(r"[!-~]{8,128}")  # printable ASCII, no spaces: random ids, UUIDs
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ProofInvalid(AgentWritError):
    """A proof of possession was refused.

    Attributes:
        reason: a fixed code — ``missing``, ``malformed``, ``key_refused``, ``wrong_key``, ``signature``,
            ``method``, ``url``, ``stale``, ``token``, ``replayed`` or ``replay_cache_full``.
        detail: a fixed sentence, safe to send back to the caller (never text taken from the proof).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(segment: str) -> bytes:
    """Canonical unpadded base64url only: a second spelling of a signature would be a second proof string."""
    if not isinstance(segment, str) or len(segment) % 4 == 1 or not _SEGMENT.fullmatch(segment):
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if _b64url(raw) != segment:
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    return raw


def public_jwk(public_raw: bytes) -> dict[str, str]:
    """The OKP/Ed25519 JWK of a raw 32-byte public key (the members RFC 7638 hashes, nothing else)."""
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(public_raw)}


def thumbprint(public_raw: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key: base64url SHA-256 of its canonical JWK (the ``jkt``)."""
    canonical = json.dumps(public_jwk(public_raw), separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def key_thumbprint(key: Ed25519PrivateKey) -> str:
    """The ``jkt`` a token bound to ``key`` carries."""
    return thumbprint(key.public_key().public_bytes_raw())


def access_token_hash(token: str) -> str:
    """``ath``: base64url SHA-256 of the access token's ASCII text."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


def target_uri(url: str) -> str:
    """The URL as a proof names it (``htu``): scheme and host lower case, default port dropped, ``/`` for an
    empty path, no query and no fragment (RFC 9449 §4.3, with the normalisation of RFC 3986 §6.2.2 and §6.2.3).

    Raises:
        ValueError: not an absolute http(s) URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an absolute http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def make_proof(
    key: Ed25519PrivateKey,
    method: str,
    url: str,
    access_token: str,
    *,
    now: float | None = None,
    jti: str | None = None,
) -> str:
    """A proof that the holder of ``key`` sends ``access_token`` with this one request (``DPoP`` header value)."""
    header = {"alg": ALGORITHM, "jwk": public_jwk(key.public_key().public_bytes_raw()), "typ": PROOF_TYPE}
    claims = {
        "ath": access_token_hash(access_token),
        "htm": method.upper(),
        "htu": target_uri(url),
        "iat": int(time.time() if now is None else now),
        "jti": jti or secrets.token_urlsafe(24),
    }
    head = _b64url(json.dumps(header, separators=(",", ":")).encode("ascii"))
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode("ascii"))
    signature = key.sign(f"{head}.{body}".encode("ascii"))
    return f"{head}.{body}.{_b64url(signature)}"


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that checked out: its id, when it was made, and the thumbprint of the key that signed it."""

    jti: str
    iat: int
    jkt: str


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64url(segment))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProofInvalid("malformed", "the DPoP proof is malformed") from None
    if not isinstance(value, dict):
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    return value


def _proof_key(header: dict[str, Any]) -> bytes:
    """The raw public key of a proof's ``jwk`` header: an OKP/Ed25519 public key and nothing else."""
    jwk = header.get("jwk")
    if (
        header.get("typ") != PROOF_TYPE
        or header.get("alg") != ALGORITHM
        or "crit" in header
        or not isinstance(jwk, dict)
        or jwk.get("kty") != "OKP"
        or jwk.get("crv") != "Ed25519"
        or "d" in jwk  # a private key has no business in a header
        or not isinstance(jwk.get("x"), str)
    ):
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    raw = _unb64url(jwk["x"])
    if len(raw) != PUBLIC_KEY_SIZE:
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    return raw


_KEYS_KEPT = 1024
_accepted_keys: OrderedDict[bytes, Ed25519PublicKey] = OrderedDict()
_keys_lock = threading.Lock()


def _public_key(raw: bytes) -> Ed25519PublicKey:
    """``load_public_key`` once per key (ValueError when refused); accepted keys are kept, least recent out first."""
    with _keys_lock:
        known = _accepted_keys.get(raw)
        if known is not None:
            _accepted_keys.move_to_end(raw)
            return known
    public = load_public_key(raw)
    with _keys_lock:
        _accepted_keys[raw] = public
        while len(_accepted_keys) > _KEYS_KEPT:
            _accepted_keys.popitem(last=False)
    return public


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str,
    jkt: str,
    now: float | None = None,
    max_age: float = 60.0,
    leeway: float = 5.0,
) -> Proof:
    """Check a proof against the request it came with and the key its token is bound to.

    Args:
        proof: the ``DPoP`` header value.
        method: the request's method.
        url: the request's URL as the server was reached (query and fragment are ignored).
        access_token: the token presented with it.
        jkt: the token's verified ``cnf.jkt``.
        now: Unix seconds (default: the clock).
        max_age: how old (by its ``iat``) a proof may be, in seconds.
        leeway: how far in the future its ``iat`` may be (clock skew), in seconds.

    Returns:
        the proof's ``jti``/``iat``/``jkt``; the caller checks the ``jti`` was not used before (:class:`ReplayCache`).

    Raises:
        ProofInvalid: with the reason; nothing is decided on an unverified claim.
    """
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_LENGTH or not proof.isascii():
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    parts = proof.split(".")
    if len(parts) != 3:
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    head, body, signature = parts
    raw = _proof_key(_json_object(head))
    signer = thumbprint(raw)
    if not secrets.compare_digest(signer, jkt):
        raise ProofInvalid("wrong_key", "the DPoP proof is not signed by the key the token is bound to")
    try:
        public = _public_key(raw)
    except ValueError:
        raise ProofInvalid("key_refused", "the DPoP proof's key is refused") from None
    sig = _unb64url(signature)
    try:
        public.verify(sig, f"{head}.{body}".encode("ascii"))
    except InvalidSignature:
        raise ProofInvalid("signature", "the DPoP proof's signature does not verify") from None
    claims = _json_object(body)
    jti, htm, htu, iat, ath = (claims.get(name) for name in ("jti", "htm", "htu", "iat", "ath"))
    if (
        not isinstance(jti, str)
        or not _JTI.fullmatch(jti)
        or not isinstance(htm, str)
        or not isinstance(htu, str)
        or not isinstance(ath, str)
        or isinstance(iat, bool)
        or not isinstance(iat, int)
    ):
        raise ProofInvalid("malformed", "the DPoP proof is malformed")
    if htm != method.upper():
        raise ProofInvalid("method", "the DPoP proof was made for another HTTP method")
    try:
        same_target = target_uri(htu) == target_uri(url)
    except ValueError:
        same_target = False
    if not same_target:
        raise ProofInvalid("url", "the DPoP proof was made for another URL")
    moment = time.time() if now is None else now
    if iat < moment - max_age or iat > moment + leeway:
        raise ProofInvalid("stale", "the DPoP proof is too old or from the future")
    if not secrets.compare_digest(ath, access_token_hash(access_token)):
        raise ProofInvalid("token", "the DPoP proof was made for another access token")
    return Proof(jti, iat, signer)


class ReplayCache:
    """Proof ids already accepted, each kept until its proof would be refused as stale anyway. Thread-safe.

    Bounded: when ``size`` entries are all still live, a new proof is refused (``replay_cache_full``) rather than
    an old entry forgotten — forgetting one would let that proof be replayed. Only proofs that passed every other
    check are remembered, so only holders of live, bound tokens can fill it.
    """

    def __init__(self, size: int = 100_000, *, clock: Any = time.time) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> until, in insertion (≈ expiry) order
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def admit(self, proof: Proof, until: float) -> None:
        """Remember ``proof`` until ``until`` (Unix seconds).

        Raises:
            ProofInvalid: ``replayed`` when it was seen before, ``replay_cache_full`` when no room is left.
        """
        key = f"{proof.jkt}.{proof.jti}"
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            known = self._seen.get(key)
            if known is not None and known >= now:
                raise ProofInvalid("replayed", "the DPoP proof was already used")
            if len(self._seen) >= self.size:
                for old in [k for k, t in self._seen.items() if t < now]:  # out of order, behind a live one
                    del self._seen[old]
            if len(self._seen) >= self.size:
                raise ProofInvalid("replay_cache_full", "the DPoP proof cannot be checked right now; try again")
            self._seen[key] = until
            self._seen.move_to_end(key)

    def _drop_expired(self, now: float) -> None:
        while self._seen:
            key, until = next(iter(self._seen.items()))
            if until >= now:
                # Entries are added with roughly increasing deadlines; one that is not expired stops the sweep.
                return
            del self._seen[key]
