"""``Admin`` and ``AsyncAdmin``: the operator API (needs the admin secret), driving the flows of ``_admin``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import TypedDict

from typing_extensions import Unpack

from . import _admin
from ._drivers import AsyncDriver, SyncDriver
from ._flows import Core
from ._models import AppRecord, AuditEvent, AuditPage, DeregisteredApp, LaunchToken, RevocationLevel, RevokeResult

__all__ = ["Admin", "AsyncAdmin", "AuditQuery"]


class AuditQuery(TypedDict, total=False):
    """Filters of ``GET /v1/audit/events``."""

    agent_id: str
    task_id: str
    event_type: str
    outcome: str
    since: str | datetime
    until: str | datetime


class Admin:
    """Operator calls on a :class:`~agentwrit_tools.client.Broker`. The admin token is cached like the app's."""

    def __init__(self, core: Core, driver: SyncDriver) -> None:
        self._core, self._driver = core, driver

    def create_app(self, name: str, scopes: Sequence[str], *, token_ttl: int | None = None) -> AppRecord:
        """Register an app; the returned record holds its ``client_secret`` (shown once)."""
        return self._driver.run(_admin.create_app(self._core, name, scopes, token_ttl))

    def list_apps(self) -> tuple[AppRecord, ...]:
        return self._driver.run(_admin.list_apps(self._core))

    def get_app(self, app_id: str) -> AppRecord:
        return self._driver.run(_admin.get_app(self._core, app_id))

    def update_app(
        self, app_id: str, *, scopes: Sequence[str] | None = None, token_ttl: int | None = None
    ) -> AppRecord:
        return self._driver.run(_admin.update_app(self._core, app_id, scopes=scopes, token_ttl=token_ttl))

    def delete_app(self, app_id: str) -> DeregisteredApp:
        return self._driver.run(_admin.delete_app(self._core, app_id))

    def create_launch_token(
        self,
        agent_name: str,
        allowed_scope: str | Sequence[str],
        *,
        max_ttl: int | None = None,
        single_use: bool = True,
        ttl: int = 30,
        task_id: str | None = None,
    ) -> LaunchToken:
        """An admin launch token (for ``Broker.mint(..., launch_token=...)`` or another client).

        ``task_id`` binds it to that task (broker extension, ignored by a reference broker): it registers agents of
        that task only, and a task-level revocation or :meth:`revoke_launch_tokens` spends it.
        """
        flow = _admin.create_launch_token(
            self._core, agent_name, allowed_scope, max_ttl=max_ttl, single_use=single_use, ttl=ttl, task_id=task_id
        )
        return self._driver.run(flow)

    def revoke(self, level: RevocationLevel, target: str) -> RevokeResult:
        """Revoke at ``token`` (jti), ``agent`` (SPIFFE ID), ``task`` (task_id) or ``chain`` (root agent) level.

        A ``task`` revocation also spends the launch tokens bound to the task (on a broker with the extensions).
        """
        return self._driver.run(_admin.revoke(self._core, level, target))

    def revoke_launch_tokens(self, task_id: str) -> int:
        """Spend every unused launch token bound to ``task_id``, whoever created it (extension
        ``POST /v1/launch-tokens/revoke``); how many were still usable. Tokens already minted are untouched: use
        :meth:`revoke` at ``task`` level for those (it spends the launch tokens too)."""
        return self._driver.run(_admin.revoke_launch_tokens(self._core, task_id))

    def audit_events(self, *, limit: int = 100, offset: int = 0, **query: Unpack[AuditQuery]) -> AuditPage:
        """One page of audit events."""
        return self._driver.run(
            _admin.audit_page(self._core, _admin.audit_filters(**query), limit=limit, offset=offset)
        )

    def iter_audit_events(self, *, page_size: int = 500, **query: Unpack[AuditQuery]) -> Iterator[AuditEvent]:
        """Every matching event, oldest first, fetching ``page_size`` at a time."""
        cursor = _admin.AuditCursor(self._core, _admin.audit_filters(**query), page_size)
        while not cursor.done:
            yield from self._driver.run(cursor.next_page()).events


class AsyncAdmin:
    """See :class:`Admin`."""

    def __init__(self, core: Core, driver: AsyncDriver) -> None:
        self._core, self._driver = core, driver

    async def create_app(self, name: str, scopes: Sequence[str], *, token_ttl: int | None = None) -> AppRecord:
        return await self._driver.run(_admin.create_app(self._core, name, scopes, token_ttl))

    async def list_apps(self) -> tuple[AppRecord, ...]:
        return await self._driver.run(_admin.list_apps(self._core))

    async def get_app(self, app_id: str) -> AppRecord:
        return await self._driver.run(_admin.get_app(self._core, app_id))

    async def update_app(
        self, app_id: str, *, scopes: Sequence[str] | None = None, token_ttl: int | None = None
    ) -> AppRecord:
        return await self._driver.run(_admin.update_app(self._core, app_id, scopes=scopes, token_ttl=token_ttl))

    async def delete_app(self, app_id: str) -> DeregisteredApp:
        return await self._driver.run(_admin.delete_app(self._core, app_id))

    async def create_launch_token(
        self,
        agent_name: str,
        allowed_scope: str | Sequence[str],
        *,
        max_ttl: int | None = None,
        single_use: bool = True,
        ttl: int = 30,
        task_id: str | None = None,
    ) -> LaunchToken:
        """See :meth:`Admin.create_launch_token`."""
        flow = _admin.create_launch_token(
            self._core, agent_name, allowed_scope, max_ttl=max_ttl, single_use=single_use, ttl=ttl, task_id=task_id
        )
        return await self._driver.run(flow)

    async def revoke(self, level: RevocationLevel, target: str) -> RevokeResult:
        return await self._driver.run(_admin.revoke(self._core, level, target))

    async def revoke_launch_tokens(self, task_id: str) -> int:
        """See :meth:`Admin.revoke_launch_tokens`."""
        return await self._driver.run(_admin.revoke_launch_tokens(self._core, task_id))

    async def audit_events(self, *, limit: int = 100, offset: int = 0, **query: Unpack[AuditQuery]) -> AuditPage:
        flow = _admin.audit_page(self._core, _admin.audit_filters(**query), limit=limit, offset=offset)
        return await self._driver.run(flow)

    async def iter_audit_events(
        self, *, page_size: int = 500, **query: Unpack[AuditQuery]
    ) -> AsyncIterator[AuditEvent]:
        cursor = _admin.AuditCursor(self._core, _admin.audit_filters(**query), page_size)
        while not cursor.done:
            for event in (await self._driver.run(cursor.next_page())).events:
                yield event
