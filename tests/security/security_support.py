"""The attacker's toolbox for the advisory tests: genuine tokens from a real broker, and forgeries built from them.

Every forgery starts from a token the broker really issued and changes one thing an attacker can change: the
algorithm, the key, the ``kid``, a byte of the header, payload or signature, or the claims (signed with the broker's
own key where the attack assumes a key shared with a sibling deployment or a clock that runs ahead). Payload-changing
forgeries also *widen* the token (``read:records:*``, a later ``exp``), so that a check that wrongly accepted one
would grant more than the genuine token does — which is what makes each refusal test able to fail.

The raw-wire helpers of the broker contract suite are reused, not copied (``broker._wire``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "resource"))

from broker._wire import (
    VALIDATE_FAILED,
    Wire,
    assert_problem,
    b64url,
    b64url_decode,
    bearer,
    claims_of,
    forge,
    jwt_parts,
    ok,
    unique,
    wire_for,
)
from resource_support import serve_asgi

__all__ = [
    "ADVISORIES",
    "ATTACKER",
    "AUDIENCE",
    "BEARER_ENDPOINTS",
    "ISSUER",
    "SIBLING_AUDIENCE",
    "SIBLING_ISSUER",
    "VALIDATE_FAILED",
    "Forgeries",
    "Genuine",
    "Wire",
    "assert_problem",
    "bearer",
    "claims_of",
    "counted",
    "jwt_parts",
    "ok",
    "refused",
    "serve_asgi",
    "served",
    "unique",
    "wire_for",
]

ADVISORIES = {
    "keys": "1 registration without a private key (small-order, non-canonical keys)",
    "at-rest": "2 secrets at rest (file modes, sealed signing key)",
    "forwarded": "3 X-Forwarded-For from anyone (rate limits, audit)",
    "audit-flood": "4 audit flooding without credentials",
    "identifiers": "5 identifiers that look alike or hide characters",
    "tokens": "6 token strictness (encoding, times, size)",
    "lifetimes": "7 credentials that outlive their grant",
    "input": "8 loose input handling (media type, NUL, echoes)",
    "exposure": "9 exposure without auth (metrics, feed, Server)",
    "pop": "10 a stolen key-bound token (bearer copy, foreign key, replayed proof)",
    "approval": "11 a dangerous call without a person's fresh yes to it",
}
"""The classes of the advisories (broker hardening, then proof of possession and approval); the suite prints
what each refused and served."""

TALLY: dict[str, Counter[str]] = {name: Counter() for name in ADVISORIES}


def counted(advisory: str, outcome: str, n: int = 1) -> None:
    """Count an attack refused (``refused``) or a legitimate request served (``served``) for ``advisory``."""
    TALLY[advisory][outcome] += n


def refused(advisory: str, resp: httpx.Response, status: int, code: str | None = None, **checks: Any) -> Any:
    """An attack, refused as a problem document with ``status``/``code`` (see ``assert_problem``); counted."""
    body = assert_problem(resp, status, code, **checks)
    counted(advisory, "refused")
    return body


def served(advisory: str, resp: httpx.Response, status: int = 200) -> Any:
    """The legitimate request that must still pass; counted."""
    body = ok(resp, status)
    counted(advisory, "served")
    return body


ISSUER = "https://broker.security.test"
AUDIENCE = "records-api"
SIBLING_ISSUER = "https://staging.security.test"
SIBLING_AUDIENCE = "billing-api"

ATTACKER = Ed25519PrivateKey.generate()
"""A key the broker has never seen."""

WIDE_SCOPE = ["read:records:*"]
RESOURCE_SCOPE = "read:records:{patient_id}"
RESOURCE_PATIENT = "P-2"
"""Genuine agent tokens hold ``read:records:P-1``; resources ask for P-2, which only a widened forgery covers."""


def jwk_of(key: Ed25519PrivateKey) -> dict[str, str]:
    x = b64url(key.public_key().public_bytes_raw())
    return {"kty": "OKP", "crv": "Ed25519", "x": x}


def thumbprint(jwk: dict[str, str]) -> str:
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def encode_segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"


def sign_eddsa(header: dict[str, Any], payload: dict[str, Any], key: Ed25519PrivateKey) -> str:
    signing_input = encode_segments(header, payload)
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


def sign_hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = encode_segments(header, payload)
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def widened(payload: dict[str, Any]) -> dict[str, Any]:
    """More than the genuine token holds: every record (agent tokens) and an hour more of life."""
    wider = dict(payload)
    if str(wider.get("sub", "")).startswith("spiffe://"):
        wider["scope"] = list(WIDE_SCOPE)
    wider["exp"] = int(wider["exp"]) + 3600
    return wider


@dataclass
class Genuine:
    """Tokens the broker under attack really issued, and what an attacker can know about its key.

    Attributes:
        agent: an agent token holding ``read:records:P-1`` (task ``task``).
        admin: an admin token.
        app: an app token.
        delegated: a token delegated to a second agent (``read:records:P-1``).
        broker_key: the broker's private key — used only for attacks that assume a sibling deployment sharing it
            (a fast clock, a foreign issuer) or to prove a claim check, never for what an outsider could do.
        jwk: the broker's public JWK as served at ``/.well-known/jwks.json``.
        sibling_issuer: an agent token from a sibling broker sharing the key but with another ``iss``.
        sibling_audience: an agent token from a sibling broker sharing the key but with another ``aud``.
        sibling_admin_issuer / sibling_admin_audience: the siblings' admin tokens.
    """

    agent: str
    admin: str
    app: str
    delegated: str
    task: str
    broker_key: Ed25519PrivateKey
    jwk: dict[str, Any]
    sibling_issuer: str = ""
    sibling_audience: str = ""
    sibling_admin_issuer: str = ""
    sibling_admin_audience: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def kid(self) -> str:
        return str(self.jwk["kid"])

    @property
    def public_raw(self) -> bytes:
        return b64url_decode(str(self.jwk["x"]))

    @property
    def public_pem(self) -> bytes:
        return self.broker_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


Forgery = Callable[[Genuine, str], list[str]]
"""From the genuine material and one genuine token to forged variants of it (each must be refused)."""


class Forgeries:
    """One method per advisory: the forged variants of a genuine ``base`` token."""

    @staticmethod
    def alg_none(g: Genuine, base: str) -> list[str]:
        header, payload = jwt_parts(base)
        out = []
        for alg in ("none", "None", "NONE", "nOnE"):
            forged = forge({**header, "alg": alg}, widened(payload))
            out += [forged, forged + b64url(b"\x00" * 64)]  # empty signature, and junk in the signature slot
        out.append(forge({"alg": "none", "typ": "JWT"}, widened(payload)))  # no kid at all
        return out

    @staticmethod
    def _hs256(base: str, secrets_: list[bytes]) -> list[str]:
        header, payload = jwt_parts(base)
        out = []
        for secret in secrets_:
            for alg in ("HS256", "HS384", "HS512"):
                digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
                signing_input = encode_segments({**header, "alg": alg}, widened(payload))
                mac = hmac.new(secret, signing_input.encode(), digest).digest()
                out.append(f"{signing_input}.{b64url(mac)}")
        return out

    @staticmethod
    def hs256_raw_public_key(g: Genuine, base: str) -> list[str]:
        return Forgeries._hs256(base, [g.public_raw, str(g.jwk["x"]).encode()])

    @staticmethod
    def hs256_jwk_json(g: Genuine, base: str) -> list[str]:
        jwk = dict(g.jwk)
        return Forgeries._hs256(
            base,
            [
                json.dumps(jwk).encode(),
                json.dumps(jwk, separators=(",", ":")).encode(),
                json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
                json.dumps({"keys": [jwk]}).encode(),
            ],
        )

    @staticmethod
    def hs256_pem_public_key(g: Genuine, base: str) -> list[str]:
        pem = g.public_pem
        return Forgeries._hs256(base, [pem, pem.strip(), pem.replace(b"\n", b"\r\n")])

    @staticmethod
    def kid_mismatch(g: Genuine, base: str) -> list[str]:
        """The attacker's own key under its own kid, and the broker's signature under a kid that is not the broker's."""
        header, payload = jwt_parts(base)
        attacker_kid = thumbprint(jwk_of(ATTACKER))
        return [
            sign_eddsa({**header, "kid": attacker_kid}, widened(payload), ATTACKER),
            sign_eddsa({**header, "kid": g.kid[:-1] + ("A" if g.kid[-1] != "A" else "B")}, payload, g.broker_key),
            sign_eddsa({k: v for k, v in header.items() if k != "kid"}, widened(payload), ATTACKER),
        ]

    @staticmethod
    def _kid_injection(base: str, kids: list[str]) -> list[str]:
        """Each injected kid with the key an injection would select (an empty file, a chosen string) and with ours."""
        header, payload = jwt_parts(base)
        out = []
        for kid in kids:
            forged_header = {**header, "kid": kid}
            out.append(sign_hs256({**forged_header, "alg": "HS256"}, widened(payload), b""))
            out.append(sign_hs256({**forged_header, "alg": "HS256"}, widened(payload), b"secret"))
            out.append(sign_eddsa(forged_header, widened(payload), ATTACKER))
        return out

    @staticmethod
    def kid_path_traversal(g: Genuine, base: str) -> list[str]:
        return Forgeries._kid_injection(
            base,
            ["../../../../../../dev/null", "/dev/null", "..\\..\\..\\windows\\win.ini", f"../{g.kid}", "%2e%2e%2f"],
        )

    @staticmethod
    def kid_sql_injection(g: Genuine, base: str) -> list[str]:
        return Forgeries._kid_injection(
            base,
            [
                "' OR '1'='1",
                f"{g.kid}' OR 1=1 --",
                "x' UNION SELECT 'secret' --",
                "'; DROP TABLE tokens; --",
                '" OR ""="',
            ],
        )

    @staticmethod
    def kid_very_long(g: Genuine, base: str) -> list[str]:
        return (
            Forgeries._kid_injection(base, [g.kid * 200, "A" * 10_000])
            + Forgeries._kid_injection(base, ["B" * 100_000])[-1:]
        )

    @staticmethod
    def unknown_key_with_our_kid(g: Genuine, base: str) -> list[str]:
        header, payload = jwt_parts(base)
        other = Ed25519PrivateKey.generate()
        return [
            sign_eddsa(header, widened(payload), ATTACKER),
            sign_eddsa(header, payload, other),  # not even widened: the key alone must decide
        ]

    @staticmethod
    def tampered_header(g: Genuine, base: str) -> list[str]:
        """Header bytes changed under the genuine signature; and header-borne keys (jwk, jku, x5u) with our kid."""
        head, body, sig = base.split(".")
        header, payload = jwt_parts(base)
        out = [
            f"{b64url(json.dumps({**header, 'typ': 'at+jwt'}).encode())}.{body}.{sig}",
            f"{b64url(json.dumps({**header, 'x': 1}).encode())}.{body}.{sig}",
            f"{b64url(json.dumps(header, indent=1).encode())}.{body}.{sig}",
            f"{head}=.{body}.{sig}",
        ]
        attacker_jwk = {**jwk_of(ATTACKER), "kid": g.kid}
        for extra in ({"jwk": attacker_jwk}, {"jku": "http://127.0.0.1:9/jwks.json"}, {"x5u": "http://127.0.0.1:9/c"}):
            out.append(sign_eddsa({**header, **extra}, widened(payload), ATTACKER))
        out.append(sign_eddsa({**header, "crit": ["exp"]}, payload, g.broker_key))  # an extension we do not know
        return out

    @staticmethod
    def tampered_payload(g: Genuine, base: str) -> list[str]:
        head, _body, sig = base.split(".")
        _header, payload = jwt_parts(base)
        out = []
        for change in (
            widened(payload),
            {**payload, "scope": WIDE_SCOPE},
            {**payload, "exp": int(payload["exp"]) + 3600},
            {**payload, "sub": "admin", "scope": ["admin:revoke:*", "admin:audit:*", "admin:launch-tokens:*"]},
            {**payload, "task_id": "another-task"},
        ):
            out.append(f"{head}.{b64url(json.dumps(change).encode())}.{sig}")
        # Same claims, different bytes (key order): a signature covers bytes, not meaning.
        reordered = dict(reversed(list(payload.items())))
        out.append(f"{head}.{b64url(json.dumps(reordered).encode())}.{sig}")
        return out

    @staticmethod
    def tampered_signature(g: Genuine, base: str) -> list[str]:
        head, body, sig = base.split(".")
        raw = bytearray(b64url_decode(sig))
        out = []
        for index in (0, 31, 63):
            flipped = bytearray(raw)
            flipped[index] ^= 0x01
            out.append(f"{head}.{body}.{b64url(bytes(flipped))}")
        out.append(f"{head}.{body}.{b64url(bytes(64))}")
        out.append(f"{head}.{body}.{b64url(bytes(raw) + b'x')}")  # 65 bytes
        out.append(f"{head}.{body}.{sig}A")
        other_sig = next(t for t in (g.admin, g.agent) if t != base).split(".")[2]
        out.append(f"{head}.{body}.{other_sig}")  # a real broker signature, over other bytes
        out.append(f"{head}.{body}.{base64.b64encode(bytes(raw)).decode()}")  # standard base64, with padding
        return out

    @staticmethod
    def truncated(g: Genuine, base: str) -> list[str]:
        head, body, sig = base.split(".")
        return [
            base[:-1],
            base[:-10],
            f"{head}.{body}.",
            f"{head}.{body}",
            f"{head}.",
            head,
            base[: len(base) // 2],
            f".{body}.{sig}",
            f"{head}..{sig}",
        ]

    @staticmethod
    def garbage(g: Genuine, base: str) -> list[str]:
        return [
            "x",
            "a.b.c",
            "...",
            "..",
            "null",
            "Bearer",
            "eyJhbGciOiJFZERTQSJ9",
            f"{base}.{base.split('.')[2]}",  # four segments
            "ey" + "A" * 5000 + "." + "B" * 5000 + "." + "C" * 86,
            "A" * 100_000,
            base64.urlsafe_b64encode(bytes(range(256))).decode() * 3,
            "e" * 10 + ".é." + "e" * 10,
            json.dumps(claims_of(base)),
        ]

    @staticmethod
    def expired(g: Genuine, base: str) -> list[str]:
        """Signed with the broker's key: the expiry check alone stands between them and acceptance."""
        header, payload = jwt_parts(base)
        now = int(time.time())
        return [
            sign_eddsa(
                header, {**widened(payload), "exp": now - 120, "iat": now - 400, "nbf": now - 400}, g.broker_key
            ),
            sign_eddsa(
                header, {**widened(payload), "exp": now - 3600, "iat": now - 7200, "nbf": now - 7200}, g.broker_key
            ),
            sign_eddsa(header, {**widened(payload), "exp": 0}, g.broker_key),
        ]

    @staticmethod
    def nbf_in_future(g: Genuine, base: str) -> list[str]:
        """A sibling with a fast clock (or a pre-minted token): signed with the broker's key, not valid yet."""
        header, payload = jwt_parts(base)
        now = int(time.time())
        return [
            sign_eddsa(header, {**widened(payload), "nbf": now + 600, "iat": now + 600}, g.broker_key),
            sign_eddsa(header, {**widened(payload), "nbf": now + 86_400 * 365}, g.broker_key),
        ]

    @staticmethod
    def wrong_issuer(g: Genuine, base: str) -> list[str]:
        """A token from a sibling deployment that shares the signing key but has another issuer."""
        header, payload = jwt_parts(base)
        tokens = [g.sibling_issuer]
        if str(payload.get("sub")) == "admin":
            tokens = [g.sibling_admin_issuer]
        tokens.append(sign_eddsa(header, {**widened(payload), "iss": "https://evil.example"}, g.broker_key))
        stripped = {k: v for k, v in widened(payload).items() if k != "iss"}
        tokens.append(sign_eddsa(header, stripped, g.broker_key))
        return tokens

    @staticmethod
    def wrong_audience(g: Genuine, base: str) -> list[str]:
        """A token from a sibling deployment that shares the signing key and issuer but serves another audience."""
        header, payload = jwt_parts(base)
        tokens = [g.sibling_audience]
        if str(payload.get("sub")) == "admin":
            tokens = [g.sibling_admin_audience]
        tokens.append(sign_eddsa(header, {**widened(payload), "aud": ["billing-api"]}, g.broker_key))
        tokens.append(sign_eddsa(header, {**widened(payload), "aud": "billing-api"}, g.broker_key))
        stripped = {k: v for k, v in widened(payload).items() if k != "aud"}
        tokens.append(sign_eddsa(header, stripped, g.broker_key))
        return tokens


BEARER_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/token/renew", None),
    ("POST", "/v1/token/release", None),
    (
        "POST",
        "/v1/delegate",
        {"delegate_to": "spiffe://agentwrit.local/agent/o/t/0000000000000000", "scope": WIDE_SCOPE},
    ),
    ("POST", "/v1/revoke", {"level": "task", "target": "victim-task"}),
    ("GET", "/v1/audit/events", None),
    ("GET", "/v1/admin/apps", None),
    ("POST", "/v1/admin/apps", {"name": "forged-app", "scopes": WIDE_SCOPE}),
    ("POST", "/v1/admin/launch-tokens", {"agent_name": "forged", "allowed_scope": WIDE_SCOPE}),
    ("POST", "/v1/app/launch-tokens", {"agent_name": "forged", "allowed_scope": WIDE_SCOPE}),
]
"""Every Bearer-protected endpoint, with a body that would do harm if the token were accepted."""
