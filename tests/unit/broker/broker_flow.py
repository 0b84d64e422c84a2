"""Drive a real BrokerCore through its service functions, without HTTP, for the broker unit tests.

The core is asynchronous (its store may be PostgreSQL); :class:`SyncCore` runs it on an event loop of its own so
tests read as plain calls. ``open_core`` opens SQLite by default, or the store a ``database_url`` names.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.broker import BrokerSettings, _audit
from agentwrit_tools.broker import _svc_admin as admin
from agentwrit_tools.broker import _svc_agents as agents
from agentwrit_tools.broker import _svc_tokens as tokens
from agentwrit_tools.broker._audit import AuditFilter
from agentwrit_tools.broker._core import BrokerCore

SECRET = "unit-test-admin-secret"
T = TypeVar("T")


class SyncCore:
    """A :class:`BrokerCore` for synchronous tests: each coroutine runs to completion on the core's own loop."""

    def __init__(self, core: BrokerCore, loop: asyncio.AbstractEventLoop) -> None:
        self.core = core
        self.loop = loop

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``fn(core, *args, **kwargs)``, a service function, run to completion."""
        return self.run(fn(self.core, *args, **kwargs))

    @property
    def settings(self) -> BrokerSettings:
        return self.core.settings

    @property
    def key(self) -> Any:
        return self.core.key

    @property
    def store(self) -> Any:
        return self.core.store

    @property
    def verified(self) -> Any:
        return self.core.verified

    @property
    def conn(self) -> Any:
        """The SQLite connection (SQLite-only tests)."""
        return self.core.store.conn

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (``?`` placeholders) on either store: tests look at what was stored."""

        async def read() -> list[tuple[Any, ...]]:
            async with self.core.store.reader() as tx:
                return await tx._rows(sql, args)  # type: ignore[attr-defined]

        return self.run(read())

    @property
    def revocations(self) -> _SyncRevocations:
        return _SyncRevocations(self)

    @property
    def audit(self) -> _SyncAudit:
        return _SyncAudit(self)

    def verify(self, token: object) -> dict[str, Any]:
        return self.run(self.core.verify(token))

    def live_claims(self, token: object) -> dict[str, Any] | None:
        return self.run(self.core.live_claims(token))

    def authenticate(self, authorization: str | None, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.core.authenticate(authorization, **kwargs))

    def close(self) -> None:
        try:
            self.run(self.core.close())
        finally:
            self.loop.close()


class _SyncRevocations:
    def __init__(self, sync: SyncCore) -> None:
        self._sync = sync

    @property
    def cascade(self) -> bool:
        return self._sync.core.revocations.cascade

    @cascade.setter
    def cascade(self, value: bool) -> None:
        self._sync.core.revocations.cascade = value

    def feed(self, after: int, limit: int) -> dict[str, Any]:
        return self._sync.run(self._sync.core.revocations.feed(after, limit))

    def is_revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        return self._sync.core.revocations.is_revoked(jti, sub, task_id, chain_root)

    def claims_revoked(self, claims: dict[str, Any]) -> bool:
        return self._sync.core.revocations.claims_revoked(claims)


class _SyncAudit:
    def __init__(self, sync: SyncCore) -> None:
        self._sync = sync

    def query(self, flt: AuditFilter, *, limit: int, offset: int) -> list[dict[str, Any]]:
        where, args = flt.where()

        async def read() -> list[dict[str, Any]]:
            async with self._sync.core.store.reader() as tx:
                return await tx.audit_events(where, args, limit, offset)

        return self._sync.run(read())

    def count(self, flt: AuditFilter | None = None) -> int:
        where, args = (flt or AuditFilter()).where()

        async def read() -> int:
            async with self._sync.core.store.reader() as tx:
                return await tx.audit_count(where, args)

        return self._sync.run(read())

    def append(self, event_type: str, **fields: Any) -> dict[str, Any]:
        async def write() -> dict[str, Any]:
            async with self._sync.core.tx() as tx:
                return await _audit.append(tx, event_type, **fields)

        return self._sync.run(write())


def open_core(db_path: Path | None, **settings: Any) -> SyncCore:
    settings.setdefault("admin_secret", SECRET)
    settings.setdefault("rate_limits", False)
    loop = asyncio.new_event_loop()
    try:
        core = loop.run_until_complete(BrokerCore.open(BrokerSettings(db_path=db_path, **settings)))
    except BaseException:
        loop.close()
        raise
    return SyncCore(core, loop)


@dataclass
class Agent:
    agent_id: str
    token: str
    claims: dict[str, Any]


class Flow:
    """Admin-side shortcuts: launch token → challenge → signed registration, delegation, revocation."""

    def __init__(self, core: SyncCore) -> None:
        self.core = core
        self.admin_claims = {"sub": "admin", "scope": admin.ADMIN_SCOPES}

    def claims(self, token: str) -> dict[str, Any]:
        return self.core.verify(token)

    def register(self, scope: list[str], *, task: str = "task-1", orch: str = "orch-1", max_ttl: int = 300) -> Agent:
        launch = self.core.call(
            admin.create_launch_token,
            {"agent_name": "unit", "allowed_scope": scope, "max_ttl": max_ttl},
            claims=self.admin_claims,
            app=None,
        )
        nonce = self.core.call(agents.issue_challenge)["nonce"]
        key = Ed25519PrivateKey.generate()
        body = {
            "launch_token": launch["launch_token"],
            "nonce": nonce,
            "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
            "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
            "orch_id": orch,
            "task_id": task,
            "requested_scope": scope,
        }
        out = self.core.call(agents.register_agent, body)
        return Agent(out["agent_id"], out["access_token"], self.claims(out["access_token"]))

    def delegate(self, holder: Agent | str, to: Agent, scope: list[str], ttl: int = 60) -> Agent:
        token = holder.token if isinstance(holder, Agent) else holder
        out = self.core.call(
            tokens.delegate,
            self.claims(token),
            "/v1/delegate",
            {"delegate_to": to.agent_id, "scope": scope, "ttl": ttl},
        )
        return Agent(to.agent_id, out["access_token"], self.claims(out["access_token"]))

    def renew(self, token: str) -> str:
        return str(self.core.call(tokens.renew, f"Bearer {token}", "/v1/token/renew")["access_token"])

    def release(self, token: str) -> None:
        self.core.call(tokens.release, f"Bearer {token}", "/v1/token/release")

    def revoke(self, level: str, target: str) -> dict[str, Any]:
        return self.core.call(tokens.revoke, self.admin_claims, {"level": level, "target": target})

    def live(self, token: str) -> bool:
        return self.core.live_claims(token) is not None
