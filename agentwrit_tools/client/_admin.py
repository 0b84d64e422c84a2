"""Operator flows (admin secret): apps, admin launch tokens, revocation, audit — plus health and metrics.

Written once as flows like the credential ones; ``Admin``/``AsyncAdmin`` only drive them. The admin token is a
:class:`~agentwrit_tools.client._session.TokenSession` like the app's (300 s tokens, refreshed ahead, single-flight,
one re-login on 401).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import get_args
from urllib.parse import quote

from ..errors import ConfigurationError
from ._flows import Core, check_ttl, launch_body, normalize_scopes
from ._models import (
    AppList,
    AppRecord,
    AuditPage,
    DeregisteredApp,
    Health,
    LaunchRevocation,
    LaunchToken,
    RevocationLevel,
    RevokeResult,
)
from ._protocol import RetryPolicy, parse, send
from ._steps import Call, Flow, Response

__all__ = ["AuditCursor", "AuditFilters", "admin_login", "app_login"]

AuditFilters = dict[str, str]
_AUDIT_MAX = 1000


def app_login(client_id: str, client_secret: str) -> Callable[[], Call]:
    """The app authentication call, built on demand so the secret lives only in the closure."""
    return lambda: Call("POST", "/v1/app/auth", body={"client_id": client_id, "client_secret": client_secret})


def admin_login(secret: str) -> Callable[[], Call]:
    return lambda: Call("POST", "/v1/admin/auth", body={"secret": secret})


def _app_path(app_id: str) -> str:
    if not app_id:
        raise ConfigurationError("app_id must not be empty")
    return "/v1/admin/apps/" + quote(app_id, safe="")


def _admin(
    core: Core, method: str, path: str, body: object = None, params: dict[str, str | int] | None = None
) -> Flow[tuple[Call, Response]]:
    """Send an operator call with the admin session; return the call (for error context) and the response."""
    session = core.require_admin()

    def build(bearer: str) -> Call:
        return Call(method, path, body=body, params=params, bearer=bearer, idempotent=method == "GET")

    response = yield from session.call(build)
    return build(""), response


def create_app(core: Core, name: str, scopes: Sequence[str], token_ttl: int | None = None) -> Flow[AppRecord]:
    check_ttl(token_ttl)
    body: dict[str, object] = {"name": name, "scopes": list(normalize_scopes(scopes))}
    if token_ttl is not None:
        body["token_ttl"] = token_ttl
    call, response = yield from _admin(core, "POST", "/v1/admin/apps", body)
    return parse(AppRecord, call, response)


def list_apps(core: Core) -> Flow[tuple[AppRecord, ...]]:
    call, response = yield from _admin(core, "GET", "/v1/admin/apps")
    return parse(AppList, call, response).apps


def get_app(core: Core, app_id: str) -> Flow[AppRecord]:
    call, response = yield from _admin(core, "GET", _app_path(app_id))
    return parse(AppRecord, call, response)


def update_app(
    core: Core, app_id: str, *, scopes: Sequence[str] | None = None, token_ttl: int | None = None
) -> Flow[AppRecord]:
    check_ttl(token_ttl)
    body: dict[str, object] = {}
    if scopes is not None:
        body["scopes"] = list(normalize_scopes(scopes))
    if token_ttl is not None:
        body["token_ttl"] = token_ttl
    call, response = yield from _admin(core, "PUT", _app_path(app_id), body)
    return parse(AppRecord, call, response)


def delete_app(core: Core, app_id: str) -> Flow[DeregisteredApp]:
    call, response = yield from _admin(core, "DELETE", _app_path(app_id))
    return parse(DeregisteredApp, call, response)


def create_launch_token(
    core: Core,
    agent_name: str,
    allowed_scope: str | Sequence[str],
    *,
    max_ttl: int | None = None,
    single_use: bool = True,
    ttl: int = 30,
    task_id: str | None = None,
) -> Flow[LaunchToken]:
    check_ttl(max_ttl)
    check_ttl(ttl)
    scopes = normalize_scopes(allowed_scope)
    body = launch_body(agent_name, scopes, max_ttl=max_ttl, single_use=single_use, ttl=ttl, task_id=task_id)
    call, response = yield from _admin(core, "POST", "/v1/admin/launch-tokens", body)
    return parse(LaunchToken, call, response)


def revoke_launch_tokens(core: Core, task_id: str) -> Flow[int]:
    """Extension ``POST /v1/launch-tokens/revoke``: spend every unused launch token bound to ``task_id``."""
    if not task_id:
        raise ConfigurationError("revoking a task's launch tokens needs its task_id")
    call, response = yield from _admin(core, "POST", "/v1/launch-tokens/revoke", {"task_id": task_id})
    return parse(LaunchRevocation, call, response).count


def revoke(core: Core, level: RevocationLevel, target: str) -> Flow[RevokeResult]:
    if level not in get_args(RevocationLevel):
        raise ConfigurationError(f"revocation level must be one of {get_args(RevocationLevel)}")
    if not target:
        raise ConfigurationError("a revocation needs a target")
    call, response = yield from _admin(core, "POST", "/v1/revoke", {"level": level, "target": target})
    result = parse(RevokeResult, call, response)
    core.verifier.note_revoked(level, target)
    return result


def audit_filters(
    *,
    agent_id: str | None = None,
    task_id: str | None = None,
    event_type: str | None = None,
    outcome: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> AuditFilters:
    """Query parameters of ``GET /v1/audit/events`` (datetimes as RFC 3339)."""
    raw = {"agent_id": agent_id, "task_id": task_id, "event_type": event_type, "outcome": outcome}
    out = {k: v for k, v in raw.items() if v is not None}
    for name, when in (("since", since), ("until", until)):
        if when is not None:
            out[name] = when.isoformat() if isinstance(when, datetime) else when
    return out


def audit_page(core: Core, filters: AuditFilters, *, limit: int = 100, offset: int = 0) -> Flow[AuditPage]:
    if not 1 <= limit <= _AUDIT_MAX or offset < 0:
        raise ConfigurationError(f"limit must be 1..{_AUDIT_MAX} and offset not negative")
    params: dict[str, str | int] = {**filters, "limit": limit, "offset": offset}
    call, response = yield from _admin(core, "GET", "/v1/audit/events", params=params)
    return parse(AuditPage, call, response)


class AuditCursor:
    """Offset pagination over audit events, with no I/O: the sync and async iterators only drive it.

    Offsets (not a timestamp) are used because the contract pages by offset; the log is append-only, so events
    added while iterating only extend the last page, never shift earlier ones.
    """

    def __init__(self, core: Core, filters: AuditFilters, page_size: int) -> None:
        if not 1 <= page_size <= _AUDIT_MAX:
            raise ConfigurationError(f"page_size must be 1..{_AUDIT_MAX}")
        self._core, self._filters, self._size = core, filters, page_size
        self._offset = 0
        self.done = False

    def next_page(self) -> Flow[AuditPage]:
        page = yield from audit_page(self._core, self._filters, limit=self._size, offset=self._offset)
        self._offset += len(page.events)
        self.done = not page.events or self._offset >= page.total
        return page


def health(policy: RetryPolicy) -> Flow[Health]:
    call = Call("GET", "/v1/health", idempotent=True)
    return parse(Health, call, (yield from send(call, policy)))


def metrics(policy: RetryPolicy) -> Flow[str]:
    """Prometheus text exposition, as is."""
    response = yield from send(Call("GET", "/v1/metrics", idempotent=True), policy)
    return response.content.decode("utf-8", errors="replace")
