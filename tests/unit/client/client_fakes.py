"""A socket-free stand-in for the broker, answering :class:`Call` steps, and a plain flow driver.

Only what the client's flows need, following the wire contract; faults are injected per (method, path) through
``FakeBroker.override``. The real broker is exercised by tests/integration/client.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agentwrit_tools.client._steps import Call, Exclusive, Flow, Response, Sleep
from agentwrit_tools.errors import AgentWritError
from agentwrit_tools.scopes import covers_all

CLIENT_ID = "app-client"
CLIENT_SECRET = "s3cr3t-" + "q" * 40
ADMIN_SECRET = "admin-" + "z" * 40


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def problem(status: int, code: str, detail: str = "", **headers: str) -> Response:
    body = {
        "type": f"urn:agentwrit:error:{code}",
        "title": {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": "/x",
        "error_code": code,
        "request_id": "0123456789abcdef",
    }
    return Response(status, {"content-type": "application/problem+json", **headers}, json.dumps(body).encode())


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(body).encode())


class FakeBroker:
    """Answers calls like the contract says. ``calls`` records every call in order."""

    def __init__(self, *, jwks: bool = True, feed: bool = True, app_ttl: int = 1800) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = "kid-1"
        self.jwks = jwks
        self.feed = feed
        self.app_ttl = app_ttl
        self.calls: list[Call] = []
        self.revoked: set[str] = set()
        self.feed_entries: list[dict[str, Any]] = []
        self.launch: dict[str, dict[str, Any]] = {}
        self.nonces: set[str] = set()
        self.registered: set[str] = set()
        self.overrides: dict[tuple[str, str], Callable[[Call], Response | None]] = {}
        self.grant_scope: list[str] | None = None  # to make the broker misbehave

    # ---- helpers -------------------------------------------------------------------------------------------

    def override(self, method: str, path: str, handler: Callable[[Call], Response | None]) -> None:
        self.overrides[(method, path)] = handler

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.calls]

    def issue(self, *, key: Ed25519PrivateKey | None = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": "", "iat": now, "nbf": now, "exp": now + 300, "jti": secrets.token_hex(16), **claims}
        return jwt.encode(body, key or self.key, algorithm="EdDSA", headers={"kid": kid or self.kid, "typ": "JWT"})

    def claims_of(self, token: str) -> dict[str, Any]:
        return jwt.decode(token, self.key.public_key(), algorithms=["EdDSA"], leeway=5, options={"verify_aud": False})

    def revoke(self, level: str, target: str, *, exp: int | None = None, revoked_at: str | None = None) -> None:
        entry: dict[str, Any] = {
            "seq": len(self.feed_entries) + 1,
            "level": level,
            "target": target,
            "revoked_at": revoked_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if exp is not None:
            entry["exp"] = exp
        self.feed_entries.append(entry)
        if level == "token":
            self.revoked.add(target)

    def _bearer_claims(self, call: Call) -> dict[str, Any] | None:
        if call.bearer is None:
            return None
        try:
            claims = self.claims_of(call.bearer)
        except jwt.PyJWTError:
            return None
        return None if claims["jti"] in self.revoked else claims

    # ---- dispatch ------------------------------------------------------------------------------------------

    def __call__(self, call: Call) -> Response:
        self.calls.append(call)
        override = self.overrides.get((call.method, call.path))
        if override is not None:
            answer = override(call)
            if answer is not None:
                return answer
        route = getattr(
            self, "_" + call.method.lower() + call.path.replace("/", "_").replace(".", "_").replace("-", "_")
        )
        return route(call)  # type: ignore[no-any-return]

    def _post_v1_app_auth(self, call: Call) -> Response:
        if call.body != {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}:
            return problem(401, "unauthorized", "Authentication failed")
        token = self.issue(sub="app:app-1", scope=["app:launch-tokens:*"], exp=int(time.time()) + self.app_ttl)
        return ok({"access_token": token, "expires_in": self.app_ttl, "token_type": "Bearer", "scopes": []})

    def _post_v1_admin_auth(self, call: Call) -> Response:
        if call.body != {"secret": ADMIN_SECRET}:
            return problem(401, "unauthorized", "bad secret")
        token = self.issue(sub="admin", scope=["admin:revoke:*"])
        return ok({"access_token": token, "expires_in": 300, "token_type": "Bearer"})

    def _post_v1_app_launch_tokens(self, call: Call) -> Response:
        if self._bearer_claims(call) is None:
            return problem(401, "unauthorized", "token verification failed")
        value = secrets.token_hex(32)
        self.launch[value] = dict(call.body)
        return ok(
            {
                "launch_token": value,
                "expires_at": "2030-01-01T00:00:00Z",
                "policy": {"allowed_scope": call.body["allowed_scope"], "max_ttl": call.body.get("max_ttl", 300)},
            },
            201,
        )

    def _get_v1_challenge(self, call: Call) -> Response:
        nonce = secrets.token_hex(32)
        self.nonces.add(nonce)
        return ok({"nonce": nonce, "expires_in": 30})

    def _post_v1_register(self, call: Call) -> Response:
        body = call.body
        policy = self.launch.get(body["launch_token"])
        if policy is None or body["nonce"] not in self.nonces:
            return problem(401, "unauthorized", "launch token or nonce")
        if not covers_all(policy["allowed_scope"], body["requested_scope"]):
            return problem(403, "scope_violation", "requested scope exceeds the launch token")
        self.nonces.discard(body["nonce"])
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(body["public_key"]))
        public.verify(base64.b64decode(body["signature"]), bytes.fromhex(body["nonce"]))
        if policy.get("single_use", True):
            del self.launch[body["launch_token"]]
        agent = f"spiffe://agentwrit.local/agent/{body['orch_id']}/{body['task_id']}/{secrets.token_hex(8)}"
        self.registered.add(agent)
        ttl = policy.get("max_ttl", 300)
        token = self.issue(
            sub=agent,
            scope=self.grant_scope or body["requested_scope"],
            task_id=body["task_id"],
            orch_id=body["orch_id"],
            exp=int(time.time()) + ttl,
        )
        return ok({"agent_id": agent, "access_token": token, "expires_in": ttl})

    def _post_v1_token_validate(self, call: Call) -> Response:
        token = call.body["token"]
        try:
            claims = self.claims_of(token)
        except jwt.PyJWTError:
            return ok({"valid": False, "error": "token is invalid or expired"})
        if claims["jti"] in self.revoked:
            return ok({"valid": False, "error": "token is invalid or expired"})
        return ok({"valid": True, "claims": claims})

    def _post_v1_token_release(self, call: Call) -> Response:
        claims = self._bearer_claims(call)
        if claims is None:
            return problem(403, "insufficient_scope", "token revoked")
        self.revoke("token", claims["jti"])
        return Response(204)

    def _post_v1_token_renew(self, call: Call) -> Response:
        claims = self._bearer_claims(call)
        if claims is None:
            return problem(401, "unauthorized", "token renewal failed")
        self.revoke("token", claims["jti"])
        fresh = {k: v for k, v in claims.items() if k not in ("jti", "iat", "nbf", "exp")}
        return ok({"access_token": self.issue(**fresh), "expires_in": 300})

    def _post_v1_delegate(self, call: Call) -> Response:
        claims = self._bearer_claims(call)
        if claims is None:
            return problem(401, "unauthorized", "token verification failed")
        if call.body["delegate_to"] not in self.registered:
            return problem(404, "not_found", "delegate not registered")
        if not covers_all(claims["scope"], call.body["scope"]):
            return problem(403, "scope_violation", "delegated scope exceeds the delegator's")
        record = {"agent": claims["sub"], "scope": claims["scope"], "delegated_at": "2025-01-01T00:00:00Z"}
        chain = [*claims.get("delegation_chain", []), record]
        token = self.issue(
            sub=call.body["delegate_to"],
            scope=call.body["scope"],
            task_id=claims["task_id"],
            orch_id=claims["orch_id"],
            delegation_chain=chain,
            chain_hash="0" * 64,
        )
        return ok({"access_token": token, "expires_in": 60, "delegation_chain": chain})

    def _get__well_known_jwks_json(self, call: Call) -> Response:
        if not self.jwks:
            return problem(404, "not_found", "no such route")
        raw = self.key.public_key().public_bytes_raw()
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": self.kid, "alg": "EdDSA", "use": "sig"}
        return ok({"keys": [jwk]})

    def _get_v1_revocations(self, call: Call) -> Response:
        if not self.feed:
            return problem(404, "not_found", "no such route")
        assert call.params is not None
        after, limit = int(call.params["after"]), int(call.params["limit"])
        page = [e for e in self.feed_entries if e["seq"] > after][:limit]
        next_after = page[-1]["seq"] if page else after
        has_more = any(e["seq"] > next_after for e in self.feed_entries)
        return ok({"revocations": page, "next_after": next_after, "has_more": has_more})


def drive(flow: Flow[Any], handler: Callable[[Call], Response], *, sleeps: list[float] | None = None) -> Any:
    """Run a flow synchronously against ``handler`` (which may raise BrokerUnavailable)."""
    result: Any = None
    error: AgentWritError | None = None
    while True:
        try:
            step = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            if isinstance(step, Call):
                result = handler(step)
            elif isinstance(step, Sleep):
                if sleeps is not None:
                    sleeps.append(step.seconds)
            elif isinstance(step, Exclusive):
                result = drive(step.flow, handler, sleeps=sleeps)
        except AgentWritError as exc:
            error = exc


class Clock:
    """A settable monotonic clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def to_call(request: httpx.Request, prefix: str = "") -> Call:
    """The :class:`Call` a driver must have sent to produce ``request`` (for MockTransport handlers)."""
    auth = request.headers.get("authorization")
    bearer = auth.removeprefix("Bearer ") if auth and auth.startswith("Bearer ") else None
    body = json.loads(request.content) if request.content else None
    params = dict(request.url.params) or None
    path = request.url.path.removeprefix(prefix)
    return Call(request.method, path, body=body, params=params, bearer=bearer)


def to_httpx(response: Response) -> httpx.Response:
    return httpx.Response(response.status, headers=dict(response.headers), content=response.content)


def mock_transport(fake: Callable[[Call], Response], prefix: str = "") -> httpx.MockTransport:
    """Route httpx requests (sync or async) to a socket-free fake broker."""
    return httpx.MockTransport(lambda request: to_httpx(fake(to_call(request, prefix))))
