"""Operator and app endpoints: admin and app authentication, app management, launch tokens.

Authority flows downwards here: the operator (admin secret) creates apps with a scope ceiling, an app creates
launch tokens whose ``allowed_scope`` must fit inside its ceiling, and a launch token bounds what an agent can
register for. Admin and app tokens carry disjoint scopes (``admin:…`` vs ``app:…``), which is what keeps each
role off the other's launch-token route.

Functions take parsed JSON and return response bodies; they raise :class:`Problem` to refuse. They run on the
event-loop thread that owns the database (see :mod:`._core`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..scopes import uncovered
from ._bodies import int_or, opt_bool, opt_int, req_identifier, req_name, req_scope_list, req_str
from ._core import BrokerCore
from ._launch_tasks import bound_task
from ._problems import Problem, bad_request, not_found, unauthorized
from ._secrets import random_hex, sha256_hex, verify_sha256
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
_APP_COLUMNS = "app_id, name, client_id, scopes, token_ttl, status, created_at, updated_at, deregistered_at"
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


def admin_login(core: BrokerCore, *, secret_ok: bool, client: str) -> dict[str, Any]:
    """Finish an admin login once the (slow) secret check has run elsewhere."""
    if not secret_ok:
        core.metrics.admin_auth.labels(status="failure").inc()
        raise core.deny(
            unauthorized("invalid admin secret"), "admin_auth_failed", agent_id="admin", detail=f"client {client}"
        )
    with core.tx():
        issued = core.mint(sub="admin", scope=ADMIN_SCOPES, ttl=core.settings.admin_token_ttl, kind="admin")
        core.audit.append("admin_auth", agent_id="admin", detail=f"client {client}", resource=issued.claims["jti"])
    core.metrics.admin_auth.labels(status="success").inc()
    return {"access_token": issued.token, "expires_in": issued.expires_in, "token_type": "Bearer"}


def _app_ttl(body: dict[str, Any], core: BrokerCore, default: int | None) -> int | None:
    ttl = opt_int(body, "token_ttl", error_code="invalid_ttl")
    ttl = default if ttl is None else ttl
    if ttl is not None and ttl > core.settings.max_ttl:
        raise Problem(400, "invalid_ttl", f"token_ttl must not exceed the broker's max TTL ({core.settings.max_ttl})")
    return ttl


def create_app_record(core: BrokerCore, name: str, scopes: list[str], token_ttl: int | None) -> AppCredentials:
    """Create an app (shared by the HTTP route and ``EmbeddedBroker.create_app``); inputs already validated."""
    app_id = f"app-{random_hex(8)}"
    client_id = f"{name[:40]}-{random_hex(6)}"
    client_secret = random_hex(32)
    ttl = token_ttl if token_ttl is not None else core.settings.app_token_ttl
    now = rfc3339_nano(time.time_ns())
    with core.tx():
        core.conn.execute(
            "INSERT INTO apps (app_id, name, client_id, secret_hash, scopes, token_ttl, status, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            (app_id, name, client_id, sha256_hex(client_secret), json.dumps(scopes), ttl, now, now),
        )
        core.audit.append(
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


def _app_body(row: tuple[Any, ...]) -> dict[str, Any]:
    app_id, name, client_id, scopes, token_ttl, status, created_at, updated_at, deregistered_at = row
    body: dict[str, Any] = {
        "app_id": app_id,
        "name": name,
        "client_id": client_id,
        "scopes": json.loads(scopes),
        "token_ttl": token_ttl,
        "status": status,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    if deregistered_at:
        body["deregistered_at"] = deregistered_at
    return body


def _app_row(core: BrokerCore, app_id: str) -> tuple[Any, ...] | None:
    row = core.conn.execute(f"SELECT {_APP_COLUMNS} FROM apps WHERE app_id = ?", (app_id,)).fetchone()  # noqa: S608
    return tuple(row) if row else None


def list_apps(core: BrokerCore) -> dict[str, Any]:
    rows = core.conn.execute(f"SELECT {_APP_COLUMNS} FROM apps ORDER BY created_at, app_id").fetchall()  # noqa: S608
    apps = [_app_body(tuple(row)) for row in rows]
    return {"apps": apps, "total": len(apps)}


def get_app(core: BrokerCore, app_id: str) -> dict[str, Any]:
    row = _app_row(core, app_id)
    if row is None:
        raise not_found("no app with that id")
    return _app_body(row)


def update_app(core: BrokerCore, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT /v1/admin/apps/{id}``: new ceiling and/or token TTL; tokens already issued are unaffected."""
    scopes = req_scope_list(body, "scopes") if body.get("scopes") is not None else None
    ttl = _app_ttl(body, core, None)
    row = _app_row(core, app_id)
    if row is None or row[5] != "active":
        raise not_found("no active app with that id")
    now = rfc3339_nano(time.time_ns())
    with core.tx():
        if scopes is not None:
            core.conn.execute("UPDATE apps SET scopes = ? WHERE app_id = ?", (json.dumps(scopes), app_id))
            core.audit.append(
                "scopes_ceiling_updated",
                agent_id=f"app:{app_id}",
                detail=f"ceiling changed from {','.join(json.loads(row[3]))} to {','.join(scopes)}",
                resource=app_id,
            )
        if ttl is not None:
            core.conn.execute("UPDATE apps SET token_ttl = ? WHERE app_id = ?", (ttl, app_id))
        core.conn.execute("UPDATE apps SET updated_at = ? WHERE app_id = ?", (now, app_id))
        core.audit.append("app_updated", agent_id=f"app:{app_id}", detail=f"app {row[1]} updated", resource=app_id)
    return get_app(core, app_id)


def delete_app(core: BrokerCore, app_id: str) -> dict[str, Any]:
    """Deregister: the app can no longer authenticate, and what it holds dies with it.

    Its live app tokens, the live tokens of the agents registered with its launch tokens (and what those
    delegated) are revoked, and its unused launch tokens are spent: a deregistered app's authority does not linger
    in credentials issued before.
    """
    row = _app_row(core, app_id)
    if row is None or row[5] != "active":
        raise not_found("no active app with that id")
    now = rfc3339_nano(time.time_ns())
    with core.tx():
        core.conn.execute(
            "UPDATE apps SET status = 'inactive', deregistered_at = ?, updated_at = ? WHERE app_id = ?",
            (now, now, app_id),
        )
        core.conn.execute("UPDATE launch_tokens SET consumed = 1 WHERE app_id = ? AND consumed = 0", (app_id,))
        hit, cascaded = core.revocations.revoke_app(app_id)
        core.audit.append(
            "app_deregistered",
            agent_id=f"app:{app_id}",
            detail=f"app {row[1]} deregistered; {len(hit)} live token(s) revoked"
            + (f", {len(cascaded)} delegated token(s) by cascade" if cascaded else ""),
            resource=app_id,
        )
    return {"app_id": app_id, "status": "inactive", "deregistered_at": now}


# -- app authentication -----------------------------------------------------------------------------------------


def parse_app_login(body: dict[str, Any]) -> tuple[str, str]:
    """The client_id is an identifier like every id the broker hands out (it also goes into the audit detail)."""
    return req_identifier(body, "client_id"), req_str(body, "client_secret", max_len=256)


def app_login(core: BrokerCore, client_id: str, client_secret: str) -> dict[str, Any]:
    """``POST /v1/app/auth`` after rate limiting; one generic message for every failure."""
    row = core.conn.execute(
        "SELECT app_id, secret_hash, token_ttl, name FROM apps WHERE client_id = ? AND status = 'active'",
        (client_id,),
    ).fetchone()
    # Hash even for unknown clients so the response time does not reveal which client_ids exist.
    ok = verify_sha256(client_secret, row[1] if row else _DUMMY_HASH) and row is not None
    if not ok or row is None:
        raise core.deny(unauthorized("Authentication failed"), "app_auth_failed", detail=f"client_id {client_id[:100]}")
    app_id, _, ttl, name = row
    with core.tx():
        issued = core.mint(sub=f"app:{app_id}", scope=APP_SCOPES, ttl=int(ttl), kind="app")
        core.audit.append(
            "app_authenticated", agent_id=f"app:{app_id}", detail=f"app {name} authenticated", resource=app_id
        )
    return {
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "token_type": "Bearer",
        "scopes": list(APP_SCOPES),
    }


def active_app_ceiling(core: BrokerCore, claims: dict[str, Any]) -> tuple[str, list[str]]:
    """The app behind an app token and its current ceiling; a deregistered app's tokens stop here."""
    sub = str(claims.get("sub", ""))
    app_id = sub.removeprefix("app:")
    row = core.conn.execute("SELECT scopes FROM apps WHERE app_id = ? AND status = 'active'", (app_id,)).fetchone()
    if not sub.startswith("app:") or row is None:
        raise core.deny(unauthorized(), "token_auth_failed", claims=claims, detail="app is not active")
    return app_id, list(json.loads(row[0]))


# -- launch tokens ----------------------------------------------------------------------------------------------


def create_launch_token(
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
            raise core.deny(
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
    with core.tx():
        core.conn.execute(
            "INSERT INTO launch_tokens (token_hash, agent_name, allowed_scope, max_ttl, single_use, expires_at,"
            " created_by, app_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sha256_hex(launch_token),
                agent_name,
                json.dumps(allowed),
                max_ttl,
                int(single_use),
                expires_at,
                creator,
                app[0] if app else None,
            ),
        )
        if task_id is not None:
            core.launch_tasks.bind(sha256_hex(launch_token), task_id, app[0] if app else None)
        core.audit.append(
            "launch_token_issued",
            agent_id=creator,
            detail=f"launch token for {agent_name[:200]} allowing {','.join(allowed)}",
        )
    core.metrics.launch_tokens_created.inc()
    policy: dict[str, Any] = {"allowed_scope": allowed, "max_ttl": max_ttl}
    if task_id is not None:
        policy["task_id"] = task_id
    return {"launch_token": launch_token, "expires_at": rfc3339_seconds(expires_at), "policy": policy}
