"""Raw-wire helpers for the broker contract tests: plain httpx requests, nothing from our own client.

The point of these tests is the HTTP contract in ``wire-contract.md``, so every helper here builds the request
bodies by hand (Ed25519 keys from ``cryptography``, base64 by hand) and returns parsed JSON or the response itself.
Helpers assert the status of the *setup* steps they perform, so a test reads as its own subject only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEX16 = re.compile(r"[0-9a-f]{16}")
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX64 = re.compile(r"[0-9a-f]{64}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
SPIFFE_AGENT = re.compile(r"spiffe://(?P<td>[^/]+)/agent/(?P<orch>[^/]+)/(?P<task>[^/]+)/(?P<instance>[0-9a-f]{16})")

ADMIN_SCOPES = {"admin:launch-tokens:*", "admin:revoke:*", "admin:audit:*"}
APP_SCOPES = {"app:launch-tokens:*", "app:agents:*", "app:audit:read"}
VALIDATE_FAILED = "token is invalid or expired"
RENEW_FAILED = "token renewal failed"
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-store", "x-frame-options": "DENY"}

# Every route of the broker. A problem's ``instance`` is the template of the route the request matched (the path
# itself for all but the one with a parameter), or empty when it matched none: never text taken from the URL.
ROUTE_TEMPLATES = (
    "/v1/health",
    "/v1/metrics",
    "/v1/challenge",
    "/v1/register",
    "/v1/token/validate",
    "/v1/token/renew",
    "/v1/token/release",
    "/v1/delegate",
    "/v1/revoke",
    "/v1/audit/events",
    "/v1/admin/auth",
    "/v1/admin/apps",
    "/v1/admin/apps/{app_id}",
    "/v1/admin/launch-tokens",
    "/v1/app/auth",
    "/v1/app/launch-tokens",
    "/.well-known/jwks.json",
    "/v1/revocations",
    "/v1/audit/approvals",
    "/v1/challenges",
    "/v1/launch-tokens/revoke",
)


def instance_for(path: str) -> str:
    """The ``instance`` a problem about a request to ``path`` carries."""
    for template in ROUTE_TEMPLATES:
        if re.fullmatch(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)), path):
            return template
    return ""


# 413 has had three reason phrases over the years; any of them is "the HTTP reason phrase".
_TITLES = {413: {"Request Entity Too Large", "Payload Too Large", "Content Too Large"}}


def unique(prefix: str = "t") -> str:
    """A short name usable as an app name, task id or orch id (lowercase letters, digits, hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def parse_time(text: str) -> datetime:
    """RFC 3339 (maybe with nanoseconds, maybe ``Z``) as an aware datetime, to the microsecond."""
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    return datetime.fromisoformat(text)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, *unverified* (for inspecting what the broker issued)."""
    header, payload, _sig = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def claims_of(token: str) -> dict[str, Any]:
    return jwt_parts(token)[1]


def forge(header: Mapping[str, Any], payload: Mapping[str, Any], *, hs256_key: bytes | None = None) -> str:
    """A token an attacker could build: unsigned (alg none) or HMAC-signed with a key of their choice."""
    signing_input = f"{b64url(json.dumps(dict(header)).encode())}.{b64url(json.dumps(dict(payload)).encode())}"
    if hs256_key is None:
        return signing_input + "."
    mac = hmac.new(hs256_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def resign_eddsa(token: str, key: Ed25519PrivateKey, **changes: Any) -> str:
    """Re-sign a token's (optionally changed) payload with a key that is not the broker's, keeping its header."""
    header, payload = jwt_parts(token)
    payload.update(changes)
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


def assert_problem(
    resp: httpx.Response,
    status: int | set[int],
    code: str | set[str] | None = None,
    *,
    detail: str | None = None,
    detail_contains: str | None = None,
    routed: bool = True,
) -> dict[str, Any]:
    """Assert an RFC 7807 problem response per the contract and return its body.

    ``code=None`` means the contract fixes the status but not the ``error_code``; the shape is still checked.
    ``routed=False``: the broker serves no route at this path (an extension switched off), so ``instance`` is empty.
    """
    statuses = {status} if isinstance(status, int) else status
    assert resp.status_code in statuses, f"expected {sorted(statuses)}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/problem+json"), resp.headers.get("content-type")
    body = resp.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error_code"), str), body
    assert body["error_code"], body
    if code is not None:
        codes = {code} if isinstance(code, str) else code
        assert body["error_code"] in codes, f"expected error_code in {sorted(codes)}, got {body!r}"
    assert body.get("type") == f"urn:agentwrit:error:{body['error_code']}", body
    titles = _TITLES.get(resp.status_code, {HTTPStatus(resp.status_code).phrase})
    assert body.get("title") in titles, body
    assert body.get("status") == resp.status_code, body
    assert isinstance(body.get("detail"), str), body
    assert body["detail"], body
    assert body.get("instance") == (instance_for(resp.request.url.path) if routed else ""), body
    assert isinstance(body.get("request_id"), str), body
    assert body["request_id"], body
    if detail is not None:
        assert body["detail"] == detail, body
    if detail_contains is not None:
        assert detail_contains.lower() in body["detail"].lower(), body
    return body


def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    return resp.json() if resp.content else None


@dataclass(frozen=True)
class App:
    app_id: str
    client_id: str
    client_secret: str
    scopes: list[str]
    token_ttl: int


@dataclass(frozen=True)
class Agent:
    """A registered agent as the raw wire sees it."""

    token: str
    agent_id: str
    expires_in: int
    key: Ed25519PrivateKey
    orch_id: str
    task_id: str
    scope: list[str]

    @property
    def claims(self) -> dict[str, Any]:
        return claims_of(self.token)

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64(pub.public_bytes_raw())


@dataclass
class Wire:
    """The contract, spoken by hand over one httpx client bound to a broker's URL.

    Admin and app tokens are cached: the broker rate-limits both logins, and the tests are about what happens
    after them.
    """

    client: httpx.Client
    admin_secret: str
    broker: Any = None
    _admin_token: str | None = None
    _app_tokens: dict[str, str] = field(default_factory=dict)

    # --- plumbing -------------------------------------------------------------------------------------------
    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    # --- admin ----------------------------------------------------------------------------------------------
    def admin_login(self) -> httpx.Response:
        return self.post("/v1/admin/auth", json={"secret": self.admin_secret})

    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = ok(self.admin_login())["access_token"]
        return self._admin_token

    def admin(self) -> dict[str, str]:
        return bearer(self.admin_token())

    def create_app(self, scopes: list[str], *, name: str | None = None, token_ttl: int | None = None) -> App:
        body: dict[str, Any] = {"name": name or unique("app"), "scopes": scopes}
        if token_ttl is not None:
            body["token_ttl"] = token_ttl
        data = ok(self.post("/v1/admin/apps", json=body, headers=self.admin()))
        return App(data["app_id"], data["client_id"], data["client_secret"], data["scopes"], data["token_ttl"])

    def app_login(self, app: App, secret: str | None = None) -> httpx.Response:
        return self.post(
            "/v1/app/auth",
            json={"client_id": app.client_id, "client_secret": app.client_secret if secret is None else secret},
        )

    def app_token(self, app: App) -> str:
        if app.client_id not in self._app_tokens:
            self._app_tokens[app.client_id] = ok(self.app_login(app))["access_token"]
        return self._app_tokens[app.client_id]

    # --- launch tokens, challenge, register ------------------------------------------------------------------
    def launch_token_response(
        self, allowed_scope: list[str], *, auth: dict[str, str] | None = None, path: str | None = None, **opts: Any
    ) -> httpx.Response:
        body = {"agent_name": opts.pop("agent_name", "contract-agent"), "allowed_scope": allowed_scope, **opts}
        return self.post(path or "/v1/admin/launch-tokens", json=body, headers=auth or self.admin())

    def launch_token(self, allowed_scope: list[str], **opts: Any) -> str:
        return str(ok(self.launch_token_response(allowed_scope, **opts), 201)["launch_token"])

    def nonce(self) -> str:
        return str(ok(self.get("/v1/challenge"))["nonce"])

    def register_body(
        self,
        launch_token: str,
        requested_scope: list[str],
        *,
        key: Ed25519PrivateKey | None = None,
        nonce: str | None = None,
        orch_id: str = "orch-1",
        task_id: str = "task-1",
    ) -> dict[str, Any]:
        key = key or Ed25519PrivateKey.generate()
        nonce = nonce or self.nonce()
        return {
            "launch_token": launch_token,
            "nonce": nonce,
            "public_key": public_key_b64(key),
            "signature": b64(key.sign(bytes.fromhex(nonce))),
            "orch_id": orch_id,
            "task_id": task_id,
            "requested_scope": requested_scope,
        }

    def register(self, body: Mapping[str, Any]) -> httpx.Response:
        return self.post("/v1/register", json=dict(body))

    def mint(
        self,
        scope: list[str],
        *,
        allowed: list[str] | None = None,
        orch_id: str = "orch-1",
        task_id: str | None = None,
        max_ttl: int | None = None,
        launch_token: str | None = None,
    ) -> Agent:
        """Launch token (admin) + challenge + register: a fresh agent holding exactly ``scope``."""
        task_id = task_id or unique("task")
        if launch_token is None:
            opts: dict[str, Any] = {} if max_ttl is None else {"max_ttl": max_ttl}
            launch_token = self.launch_token(allowed or scope, **opts)
        key = Ed25519PrivateKey.generate()
        body = self.register_body(launch_token, scope, key=key, orch_id=orch_id, task_id=task_id)
        data = ok(self.register(body))
        return Agent(data["access_token"], data["agent_id"], data["expires_in"], key, orch_id, task_id, scope)

    # --- token paths ----------------------------------------------------------------------------------------
    def validate(self, token: str) -> dict[str, Any]:
        return dict(ok(self.post("/v1/token/validate", json={"token": token})))

    def is_valid(self, token: str) -> bool:
        return bool(self.validate(token)["valid"])

    def assert_invalid(self, token: str) -> None:
        """Validate says no, with the one generic message and no claims."""
        body = self.validate(token)
        assert body["valid"] is False, body
        assert body.get("error") == VALIDATE_FAILED, body
        assert not body.get("claims"), body

    def renew(self, token: str) -> httpx.Response:
        return self.post("/v1/token/renew", headers=bearer(token))

    def release(self, token: str) -> httpx.Response:
        return self.post("/v1/token/release", headers=bearer(token))

    def delegate(self, token: str, delegate_to: str, scope: list[str], **opts: Any) -> httpx.Response:
        return self.post(
            "/v1/delegate", json={"delegate_to": delegate_to, "scope": scope, **opts}, headers=bearer(token)
        )

    def revoke(self, level: str, target: str) -> httpx.Response:
        return self.post("/v1/revoke", json={"level": level, "target": target}, headers=self.admin())

    def feed(self, **params: Any) -> httpx.Response:
        """``GET /v1/revocations`` with the operator's bearer (the feed is for apps and operators)."""
        return self.get("/v1/revocations", params=params, headers=self.admin())

    # --- audit ----------------------------------------------------------------------------------------------
    def audit(self, **params: Any) -> dict[str, Any]:
        return dict(ok(self.get("/v1/audit/events", params=params, headers=self.admin())))

    def all_events(self, **params: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while True:
            page = self.audit(limit=1000, offset=len(events), **params)
            events.extend(page["events"])
            if not page["events"] or len(events) >= page["total"]:
                return events


@contextlib.contextmanager
def wire_for(running: Any) -> Iterator[Wire]:
    """A :class:`Wire` to a running embedded broker, over an httpx client of its own."""
    with httpx.Client(base_url=running.url, timeout=30.0) as client:
        yield Wire(client, running.admin_secret, running)


def verify_chain(events: list[dict[str, Any]]) -> None:
    """Re-verify the audit hash chain from the API's output alone, from genesis."""
    from agentwrit_tools.auditchain import GENESIS_HASH, event_hash

    prev = GENESIS_HASH
    for event in events:
        assert event["prev_hash"] == prev, event
        assert event["hash"] == event_hash(prev, event), event
        prev = event["hash"]


def walk_json(value: Any) -> Iterator[str]:
    """Every string (keys and values) inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from walk_json(v)
    elif isinstance(value, list):
        for item in value:
            yield from walk_json(item)


def thumbprint_candidates(jwk: Mapping[str, Any]) -> set[str]:
    """RFC 7638 thumbprint of an OKP key, base64url (the RFC's own presentation) or hex."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return {b64url(digest), digest.hex()}
