"""The endpoint table: thin async handlers mapping HTTP onto the service functions.

Handlers are ``async`` and await the services on the serving event loop (SQLite's operations never leave it;
PostgreSQL's wait on the pool). The one slow operation, the scrypt check of the admin secret, runs in a worker
thread and touches no shared state.

Extension endpoints (``settings.extensions``):

* ``GET /.well-known/jwks.json`` — the broker's public keys as OKP/Ed25519 JWKs with the tokens' ``kid``: the
  current key first, then every rotated-out key until the tokens it signed have expired.
* ``GET /v1/revocations?after=<seq>&limit=<1..1000>`` — the revocation feed, for an app or admin bearer (it names
  every revoked task and agent, so it is not for anyone who can reach the port):
  ``{"revocations": [{"seq", "level", "target", "revoked_at"}], "next_after", "has_more"}``. Releases, renewal
  predecessors and cascaded revocations appear as ``token`` entries whose target is the ``jti``.
* ``POST /v1/audit/approvals`` — an app records a person's decision on a tool call that needed approval
  (strictly validated, small, rate-limited per app: see :mod:`._approvals`) → 201 ``{"recorded", "event_id"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from . import _svc_admin as admin
from . import _svc_agents as agents
from . import _svc_tokens as tokens
from ._approvals import MAX_BODY, ApprovalRecords
from ._bodies import opt_str
from ._core import BrokerCore
from ._denials import request_peer
from ._fastpath_routes import register_fastpath_routes
from ._http import read_json
from ._metrics import CONTENT_TYPE
from ._problems import Problem
from ._ratelimit import RateLimiter
from ._settings import BrokerSettings
from ._store import StoreUnavailable

__all__ = ["VERSION", "register_routes"]

VERSION = "2.0.0"
FEED_READERS = ("admin", "app")  # the principals that may read the revocation feed


def _core(request: Request) -> BrokerCore:
    core: BrokerCore = request.app.state.core
    return core


async def _json(request: Request) -> dict[str, Any]:
    return await read_json(request, _core(request).settings.max_body_bytes)


def _client_ip(request: Request) -> str:
    """The real peer (or the client a trusted proxy names): the rate-limit key and what the audit records."""
    return request_peer.get()


def _rate_limited(detail: str, wait: float) -> Problem:
    return Problem(429, "rate_limited", detail, headers={"Retry-After": RateLimiter.retry_after(wait)})


def register_routes(app: FastAPI, settings: BrokerSettings) -> None:
    """Attach every contract endpoint (and the extensions when enabled) to ``app``."""

    # Starlette tries routes in order, one regex each, so the per-call path comes first: challenge, register,
    # release and the app's launch tokens are most requests; operator endpoints are rare.
    # -- agents and tokens ----------------------------------------------------------------------------------

    @app.get("/v1/challenge")
    async def challenge(request: Request) -> Response:
        return JSONResponse(await agents.issue_challenge(_core(request)))

    @app.post("/v1/register")
    async def register(request: Request) -> Response:
        core = _core(request)
        return JSONResponse(await agents.register_agent(core, await _json(request)))

    @app.post("/v1/token/validate")
    async def validate(request: Request) -> Response:
        core = _core(request)
        return JSONResponse(await tokens.validate(core, await _json(request)))

    @app.post("/v1/token/renew")
    async def renew(request: Request) -> Response:
        core = _core(request)
        return JSONResponse(await tokens.renew(core, request.headers.get("authorization"), request.url.path))

    @app.post("/v1/token/release")
    async def release(request: Request) -> Response:
        core = _core(request)
        await tokens.release(core, request.headers.get("authorization"), request.url.path)
        return Response(status_code=204)

    @app.post("/v1/delegate")
    async def delegate(request: Request) -> Response:
        core = _core(request)
        claims = await core.authenticate(
            request.headers.get("authorization"), required_scope=None, path=request.url.path
        )
        return JSONResponse(await tokens.delegate(core, claims, request.url.path, await _json(request)))

    # -- apps -----------------------------------------------------------------------------------------------

    @app.post("/v1/app/auth")
    async def app_auth(request: Request) -> Response:
        core = _core(request)
        client_id, client_secret = admin.parse_app_login(await _json(request))
        if core.settings.rate_limits:
            wait = core.app_limiter.acquire(client_id)
            if wait:
                await core.record_denial("app_rate_limited", detail=f"client_id {client_id[:100]}")
                raise _rate_limited("too many authentication attempts for this client_id", wait)
        return JSONResponse(await admin.app_login(core, client_id, client_secret))

    @app.post("/v1/app/launch-tokens")
    async def app_launch_token(request: Request) -> Response:
        core = _core(request)
        claims = await core.authenticate(
            request.headers.get("authorization"),
            required_scope="app:launch-tokens:*",
            path=request.url.path,
            scope_event="launch_token_denied",
        )
        app_info = await admin.active_app_ceiling(core, claims)
        body = await _json(request)
        return JSONResponse(await admin.create_launch_token(core, body, claims=claims, app=app_info), status_code=201)

    @app.get("/v1/health")
    async def health(request: Request) -> Response:
        core = _core(request)
        connected = await core.db_connected()
        count = 0
        if connected:
            try:
                await core.flush_denials()
                async with core.store.reader() as tx:
                    count = await tx.audit_count()
            except StoreUnavailable:
                connected = False
        return JSONResponse(
            {
                "status": "ok",
                "version": VERSION,
                "uptime": core.uptime(),
                "db_connected": connected,
                "audit_events_count": count,
            }
        )

    @app.get("/v1/metrics")
    async def metrics(request: Request) -> Response:
        core = _core(request)
        with contextlib.suppress(StoreUnavailable):  # the gauge keeps its last value; counters need no database
            core.metrics.active_agents.set(await core.count_active_agents())
        return Response(core.metrics.render(), media_type=CONTENT_TYPE)

    # -- operator -------------------------------------------------------------------------------------------

    @app.post("/v1/admin/auth")
    async def admin_auth(request: Request) -> Response:
        core = _core(request)
        client = _client_ip(request)
        if core.settings.rate_limits:
            wait = core.admin_limiter.acquire(client)
            if wait:
                core.metrics.admin_auth.labels(status="rate_limited").inc()
                raise _rate_limited("too many admin authentication attempts", wait)
        body = await _json(request)
        secret = opt_str(body, "secret", max_len=1024)
        if secret is None:
            raise Problem(400, "invalid_request", "missing required field 'secret'")
        ok = await asyncio.to_thread(BrokerCore.check_admin_secret, secret, await core.stored_admin_hash())
        return JSONResponse(await admin.admin_login(core, secret_ok=ok, client=client))

    @app.post("/v1/admin/apps")
    async def create_app(request: Request) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope=admin.ADMIN_APPS_SCOPE, path=request.url.path
        )
        name, scopes, ttl = admin.parse_new_app(core, await _json(request))
        return JSONResponse((await admin.create_app_record(core, name, scopes, ttl)).body())

    @app.get("/v1/admin/apps")
    async def list_apps(request: Request) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope=admin.ADMIN_APPS_SCOPE, path=request.url.path
        )
        return JSONResponse(await admin.list_apps(core))

    @app.get("/v1/admin/apps/{app_id}")
    async def get_app(request: Request, app_id: str) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope=admin.ADMIN_APPS_SCOPE, path=request.url.path
        )
        return JSONResponse(await admin.get_app(core, app_id))

    @app.put("/v1/admin/apps/{app_id}")
    async def update_app(request: Request, app_id: str) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope=admin.ADMIN_APPS_SCOPE, path=request.url.path
        )
        return JSONResponse(await admin.update_app(core, app_id, await _json(request)))

    @app.delete("/v1/admin/apps/{app_id}")
    async def delete_app(request: Request, app_id: str) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope=admin.ADMIN_APPS_SCOPE, path=request.url.path
        )
        return JSONResponse(await admin.delete_app(core, app_id))

    @app.post("/v1/admin/launch-tokens")
    async def admin_launch_token(request: Request) -> Response:
        core = _core(request)
        claims = await core.authenticate(
            request.headers.get("authorization"),
            required_scope="admin:launch-tokens:*",
            path=request.url.path,
            scope_event="launch_token_denied",
        )
        body = await _json(request)
        return JSONResponse(await admin.create_launch_token(core, body, claims=claims, app=None), status_code=201)

    @app.post("/v1/revoke")
    async def revoke(request: Request) -> Response:
        core = _core(request)
        claims = await core.authenticate(
            request.headers.get("authorization"), required_scope="admin:revoke:*", path=request.url.path
        )
        return JSONResponse(await tokens.revoke(core, claims, await _json(request)))

    @app.get("/v1/audit/events")
    async def audit_events(request: Request) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope="admin:audit:*", path=request.url.path
        )
        return JSONResponse(await tokens.audit_events(core, request.query_params))

    if not settings.extensions:
        return

    # -- extensions -----------------------------------------------------------------------------------------

    register_fastpath_routes(app)

    @app.get("/.well-known/jwks.json")
    async def jwks(request: Request) -> Response:
        return JSONResponse({"keys": [key.jwk() for key in _core(request).keys.published(time.time())]})

    @app.get("/v1/revocations")
    async def revocations(request: Request) -> Response:
        core = _core(request)
        await core.authenticate(
            request.headers.get("authorization"), required_scope=None, path=request.url.path, principals=FEED_READERS
        )
        return JSONResponse(await tokens.revocation_feed(core, request.query_params))

    approvals = ApprovalRecords()

    @app.post("/v1/audit/approvals")
    async def approval_record(request: Request) -> Response:
        core = _core(request)
        claims = await core.authenticate(
            request.headers.get("authorization"), required_scope=None, path=request.url.path, principals=("app",)
        )
        body = await read_json(request, min(MAX_BODY, core.settings.max_body_bytes))
        return JSONResponse(await approvals.record(core, claims, body), status_code=201)
