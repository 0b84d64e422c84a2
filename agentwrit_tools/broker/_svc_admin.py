"""Operator and app endpoints: admin and app authentication, app management, launch tokens.

Authority flows downwards here: the operator (admin secret) creates apps with a scope ceiling, an app creates
launch tokens whose ``allowed_scope`` must fit inside its ceiling, and a launch token bounds what an agent can
register for. Admin and app tokens carry disjoint scopes (``admin:…`` vs ``app:…``), which is what keeps each
role off the other's launch-token route.

Functions take parsed JSON and return response bodies; they raise :class:`Problem` to refuse. Their state goes
through the store (:mod:`._store`), each change in one transaction with its audit event.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..scopes import uncovered
from . import _audit
from ._bodies import int_or, opt_bool, opt_int, req_identifier, req_name, req_scope_list, req_str
from ._core import BrokerCore
from ._launch_tasks import bound_task
from ._problems import Problem, bad_request, not_found, unauthorized
from ._secrets import random_hex, sha256_hex, verify_sha256
from ._store import AppRow, LaunchTokenRow
from ._timefmt import rfc3339_nano, rfc3339_seconds

__all__ = [
    "ADMIN_SCOPES",
    "APP_SCOPES",
    "AppCredentials",
    "admin_login",
    "app_login",
    "create_app_record",
    "create_launch_token",
    "delete_app",
    "get_app",
    "list_apps",
    "update_app",
]

ADMIN_SCOPES = ["admin:launch-tokens:*", "admin:revoke:*", "admin:audit:*"]
APP_SCOPES = ["app:launch-tokens:*", "app:agents:*", "app:audit:read"]
# App management has no scope of its own in the contract; it is an operator task like issuing launch tokens.
ADMIN_APPS_SCOPE = "admin:launch-tokens:*"

_APP_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_DUMMY_HASH = sha256_hex("no-such-client")


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """A newly created app, with the only copy of its client secret."""

    app_id: str
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: list[str]
    token_ttl: int

    def body(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scopes": self.scopes,
            "token_ttl": self.token_ttl,
        }


# -- admin ------------------------------------------------------------------------------------------------------


async def admin_login(core: BrokerCore, *, secret_ok: bool, client: str) -> dict[str, Any]:
    """Finish an admin login once the (slow) secret check has run elsewhere."""
    if not secret_ok:
        core.metrics.admin_auth.labels(status="failure").inc()
        raise await core.deny(
            unauthorized("invalid admin secret"), "admin_auth_failed", agent_id="admin", detail=f"client {client}"
        )
    async with core.tx() as tx:
        issued = await core.mint(tx, sub="admin", scope=ADMIN_SCOPES, ttl=core.settings.admin_token_ttl, kind="admin")
        await _audit.append(
            tx, "admin_auth", agent_id="admin", detail=f"client {client}", resource=issued.claims["jti"]
        )
    core.metrics.admin_auth.labels(status="success").inc()
    return {"access_token": issued.token, "expires_in": issued.expires_in, "token_type": "Bearer"}


def _app_ttl(body: dict[str, Any], core: BrokerCore, default: int | None) -> int | None:
    ttl = opt_int(body, "token_ttl", error_code="invalid_ttl")
    ttl = default if ttl is None else ttl
    if ttl is not None and ttl > core.settings.max_ttl:
        raise Problem(400, "invalid_ttl", f"token_ttl must not exceed the broker's max TTL ({core.settings.max_ttl})")
    return ttl


async def create_app_record(core: BrokerCore, name: str, scopes: list[str], token_ttl: int | None) -> AppCredentials:
    """Create an app (shared by the HTTP route and ``EmbeddedBroker.create_app``); inputs already validated."""
    app_id = f"app-{random_hex(8)}"
    client_id = f"{name[:40]}-{random_hex(6)}"
    client_secret = random_hex(32)
    ttl = token_ttl if token_ttl is not None else core.settings.app_token_ttl
    now = rfc3339_nano(time.time_ns())
    row = AppRow(app_id, name, client_id, sha256_hex(client_secret), json.dumps(scopes), ttl, "active", now, now)
    async with core.tx() as tx:
        await tx.insert_app(row)
        await _audit.append(
            tx,
            "app_registered",
            agent_id=f"app:{app_id}",
            detail=f"app {name} registered with ceiling {','.join(scopes)}",
            resource=app_id,
        )
    return AppCredentials(app_id, name, client_id, client_secret, scopes, ttl)


def parse_new_app(core: BrokerCore, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
    """Validate ``POST /v1/admin/apps``'s body: (name, scopes, token_ttl)."""
    name = req_str(body, "name", max_len=128)
    if not _APP_NAME.fullmatch(name):
        raise bad_request("name must be lowercase letters, digits and hyphens, starting with a letter or digit")
    scopes = req_scope_list(body, "scopes")
    return name, scopes, _app_ttl(body, core, None)


def _app_body(row: AppRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": row.app_id,
        "name": row.name,
        "client_id": row.client_id,
        "scopes": json.loads(row.scopes),
        "token_ttl": row.token_ttl,
        "status": row.status,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    if row.deregistered_at:
        body["deregistered_at"] = row.deregistered_at
    return body


async def _app_row(core: BrokerCore, app_id: str) -> AppRow | None:
    async with core.store.reader() as tx:
        return await tx.app(app_id)


async def list_apps(core: BrokerCore) -> dict[str, Any]:
    async with core.store.reader() as tx:
        apps = [_app_body(row) for row in await tx.apps()]
    return {"apps": apps, "total": len(apps)}


async def get_app(core: BrokerCore, app_id: str) -> dict[str, Any]:
    row = await _app_row(core, app_id)
    if row is None:
        raise not_found("no app with that id")
    return _app_body(row)


async def update_app(core: BrokerCore, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT /v1/admin/apps/{id}``: new ceiling and/or token TTL; tokens already issued are unaffected."""
    scopes = req_scope_list(body, "scopes") if body.get("scopes") is not None else None
    ttl = _app_ttl(body, core, None)
    row = await _app_row(core, app_id)
    if row is None or row.status != "active":
        raise not_found("no active app with that id")
    now = rfc3339_nano(time.time_ns())
    async with core.tx() as tx:
        await tx.update_app(
            app_id, scopes=json.dumps(scopes) if scopes is not None else None, token_ttl=ttl, updated_at=now
        )
        if scopes is not None:
            await _audit.append(
                tx,
                "scopes_ceiling_updated",
                agent_id=f"app:{app_id}",
                detail=f"ceiling changed from {','.join(json.loads(row.scopes))} to {','.join(scopes)}",
                resource=app_id,
            )
        await _audit.append(
            tx, "app_updated", agent_id=f"app:{app_id}", detail=f"app {row.name} updated", resource=app_id
        )
    return await get_app(core, app_id)


async def delete_app(core: BrokerCore, app_id: str) -> dict[str, Any]:
    """Deregister: the app can no longer authenticate, and what it holds dies with it.

    Its live app tokens, the live tokens of the agents registered with its launch tokens (and what those
    delegated) are revoked, and its unused launch tokens are spent: a deregistered app's authority does not linger
    in credentials issued before.
    """
    row = await _app_row(core, app_id)
    if row is None or row.status != "active":
        raise not_found("no active app with that id")
    now = rfc3339_nano(time.time_ns())
    async with core.tx() as tx:
        await tx.deactivate_app(app_id, now)
        hit, cascaded = await core.revocations.revoke_app(tx, app_id)
        await _audit.append(
            tx,
            "app_deregistered",
            agent_id=f"app:{app_id}",
            detail=f"app {row.name} deregistered; {len(hit)} live token(s) revoked"
            + (f", {len(cascaded)} delegated token(s) by cascade" if cascaded else ""),
            resource=app_id,
        )
    return {"app_id": app_id, "status": "inactive", "deregistered_at": now}


# -- app authentication -----------------------------------------------------------------------------------------


def parse_app_login(body: dict[str, Any]) -> tuple[str, str]:
    """The client_id is an identifier like every id the broker hands out (it also goes into the audit detail)."""
    return req_identifier(body, "client_id"), req_str(body, "client_secret", max_len=256)


async def app_login(core: BrokerCore, client_id: str, client_secret: str) -> dict[str, Any]:
    """``POST /v1/app/auth`` after rate limiting; one generic message for every failure."""
    async with core.store.reader() as reader:
        row = await reader.active_app_by_client(client_id)
    # Hash even for unknown clients so the response time does not reveal which client_ids exist.
    ok = verify_sha256(client_secret, row.secret_hash if row else _DUMMY_HASH) and row is not None
    if not ok or row is None:
        raise await core.deny(
            unauthorized("Authentication failed"), "app_auth_failed", detail=f"client_id {client_id[:100]}"
        )
    app_id = row.app_id
    async with core.tx() as tx:
        issued = await core.mint(tx, sub=f"app:{app_id}", scope=APP_SCOPES, ttl=int(row.token_ttl), kind="app")
        await _audit.append(
            tx, "app_authenticated", agent_id=f"app:{app_id}", detail=f"app {row.name} authenticated", resource=app_id
        )
    return {
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "token_type": "Bearer",
        "scopes": list(APP_SCOPES),
    }


async def active_app_ceiling(core: BrokerCore, claims: dict[str, Any]) -> tuple[str, list[str]]:
    """The app behind an app token and its current ceiling; a deregistered app's tokens stop here."""
    sub = str(claims.get("sub", ""))
    app_id = sub.removeprefix("app:")
    row = await _app_row(core, app_id) if sub.startswith("app:") else None
    if row is None or row.status != "active":
        raise await core.deny(unauthorized(), "token_auth_failed", claims=claims, detail="app is not active")
    return app_id, list(json.loads(row.scopes))


# -- launch tokens ----------------------------------------------------------------------------------------------


async def create_launch_token(
    core: BrokerCore, body: dict[str, Any], *, claims: dict[str, Any], app: tuple[str, list[str]] | None
) -> dict[str, Any]:
    """``POST /v1/{admin,app}/launch-tokens``.

    Args:
        claims: the caller's verified token claims.
        app: (app_id, ceiling) for the app route; ``None`` for the admin route (no ceiling).
    """
    agent_name = req_name(body, "agent_name")
    allowed = req_scope_list(body, "allowed_scope")
    max_ttl = int_or(body, "max_ttl", core.settings.default_ttl, error_code="invalid_ttl")
    ttl = int_or(body, "ttl", core.settings.launch_token_ttl, error_code="invalid_ttl")
    single_use = opt_bool(body, "single_use", True)
    max_ttl = min(max_ttl, core.settings.max_ttl)
    ttl = min(ttl, core.settings.max_ttl)
    creator = str(claims.get("sub", ""))
    if app is not None:
        app_id, ceiling = app
        missing = uncovered(ceiling, allowed)
        if missing:
            raise await core.deny(
                Problem(
                    403,
                    "forbidden",
                    f"allowed_scope exceeds the app's scope ceiling: {', '.join(missing)} not covered by "
                    f"the ceiling [{', '.join(ceiling)}]",
                ),
                "scope_ceiling_exceeded",
                claims=claims,
                detail=f"requested {','.join(allowed)} beyond ceiling {','.join(ceiling)}",
                resource=app_id,
            )
    task_id = bound_task(body, extensions=core.settings.extensions)  # extension: see _launch_tasks
    launch_token = random_hex(32)
    expires_at = time.time() + ttl
    row = LaunchTokenRow(
        token_hash=sha256_hex(launch_token),
        agent_name=agent_name,
        allowed_scope=json.dumps(allowed),
        max_ttl=max_ttl,
        single_use=single_use,
        expires_at=expires_at,
        created_by=creator,
        app_id=app[0] if app else None,
        task_id=task_id,
    )
    async with core.tx() as tx:
        await tx.insert_launch_token(row)
        await _audit.append(
            tx,
            "launch_token_issued",
            agent_id=creator,
            detail=f"launch token for {agent_name[:200]} allowing {','.join(allowed)}",
        )
    core.metrics.launch_tokens_created.inc()
    policy: dict[str, Any] = {"allowed_scope": allowed, "max_ttl": max_ttl}
    if task_id is not None:
        policy["task_id"] = task_id
    return {"launch_token": launch_token, "expires_at": rfc3339_seconds(expires_at), "policy": policy}
