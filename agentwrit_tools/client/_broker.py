"""``Broker`` and ``AsyncBroker``: configuration and the public calls, over one I/O-free core.

The two classes share ``_BrokerBase`` (settings, core, repr, ``from_env``); each method body is one line that
hands a flow to the class's driver. Each also owns a background runner (``_background``) for what is fetched
ahead of the calls that need it (``_prefetch``, ``_launchers``).
"""

from __future__ import annotations

from collections.abc import Generator, Hashable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _admin, _approvals, _flows
from ._background import AsyncBackground, SyncBackground
from ._claims import Claims
from ._clients import async_driver, sync_driver
from ._config import DEFAULT_MAX_CONNECTIONS, Settings, env_settings
from ._credential import AsyncCredential, Credential
from ._launch import TaskLaunch
from ._launchers import AsyncTaskLauncher, TaskLauncher
from ._models import Health
from ._operator import Admin, AsyncAdmin
from ._prefetch import NoncePool
from ._protocol import RetryPolicy

__all__ = ["AsyncBroker", "Broker"]

B = TypeVar("B", bound="_BrokerBase")


class _BrokerBase:
    """Settings and core shared by both brokers. See :class:`Broker` for the arguments."""

    def __init__(
        self,
        broker_url: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        admin_secret: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        revocation_bound: float = 1.0,
        strict_verify: bool = False,
        leeway: float = 2.0,
        issuer: str | None = None,
        audience: str | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_token_ttl: float = 86400.0,
        proof_of_possession: bool = False,
        prefetch: bool = True,
    ) -> None:
        self.prefetches = prefetch
        self.settings = Settings(
            broker_url,
            client_id,
            client_secret,
            admin_secret,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            revocation_bound=revocation_bound,
            strict_verify=strict_verify,
            leeway=leeway,
            issuer=issuer,
            audience=audience,
            max_connections=max_connections,
            max_token_ttl=max_token_ttl,
            proof_of_possession=proof_of_possession,
        )
        self._core = self.settings.build_core()
        if prefetch:
            self._core.nonces = NoncePool()

    @classmethod
    def from_env(cls: type[B], environ: Mapping[str, str] | None = None, **options: Any) -> B:
        """Configure from ``AGENTWRIT_BROKER_URL``/``_CLIENT_ID``/``_CLIENT_SECRET``/``_ADMIN_SECRET``.

        ``options`` are the keyword arguments of the constructor (timeouts, revocation bound…).
        """
        return cls(**env_settings(environ), **options)  # type: ignore[arg-type]

    @property
    def broker_url(self) -> str:
        return self.settings.broker_url

    @property
    def verification_mode(self) -> str:
        """``unknown`` until the first verification, then ``local`` (JWKS + feed) or ``remote`` (validate)."""
        return self._core.verifier.mode

    def __repr__(self) -> str:
        who = f", client_id={self.settings.client_id!r}" if self.settings.client_id else ""
        return f"{type(self).__name__}({self.broker_url!r}{who})"


class Broker(_BrokerBase):
    """Synchronous client of an AgentWrit(-compatible) broker.

    Args:
        broker_url: base URL, e.g. ``http://127.0.0.1:8080``.
        client_id: app client id; without it the broker can still verify tokens (resource servers).
        client_secret: app client secret.
        admin_secret: operator secret, for :attr:`admin`.
        timeout: seconds per request (connect, read, write, pool).
        retry: resend policy; see :class:`RetryPolicy`.
        revocation_bound: how stale (seconds) revocation knowledge may be when verifying locally.
        strict_verify: always verify with ``POST /v1/token/validate``.
        leeway: clock skew (seconds) tolerated on ``exp``/``nbf`` when verifying locally.
        issuer: required ``iss`` when set. audience: required member of ``aud`` when set.
        max_connections: connection pool size; on the async client also the most requests in flight at once
            (the others wait their turn, within ``timeout``). Small on purpose: one broker serves requests one
            at a time, and a large pool only costs client CPU (default 16).
        max_token_ttl: the broker's global max TTL in seconds (``AA_MAX_TTL``, default 86400): how long local
            verification must remember a revoked token whose ``exp`` it does not know.
        proof_of_possession: mint key-bound tokens (broker extension): each credential's token names its agent's
            key (``cnf.jkt``) and is presented with a fresh proof per request (``credential.headers_for``,
            :class:`CredentialAuth`). A broker without the extension issues bearer tokens instead.
        prefetch: fetch ahead, off the calls' path, what a task's credentials need — its launch token and
            challenge nonces (see :mod:`agentwrit_tools.client._launchers`). False: every mint fetches its own.
        http_client: a ready ``httpx.Client`` to use (not closed by :meth:`close`).
        transport: an httpx transport for the client we build (tests: ``httpx.MockTransport``).
    """

    def __init__(
        self,
        broker_url: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(broker_url, client_id, client_secret, **options)
        self._driver = sync_driver(self.settings, http_client, transport)
        self._background = SyncBackground(self._driver)
        self.admin = Admin(self._core, self._driver)
        """Operator calls (apps, launch tokens, revocation, audit); needs ``admin_secret``."""

    def mint(
        self,
        scope: str | Sequence[str],
        *,
        orch_id: str,
        task_id: str,
        ttl: int | None = None,
        launch_token: str | None = None,
        agent_name: str | None = None,
        audience: str | None = None,
    ) -> Credential:
        """A fresh credential for exactly ``scope``, gated on its verified claims.

        Launch token (from the app session, or ``launch_token`` when given) → challenge → new Ed25519 key →
        signed nonce → register → verify. ``ttl`` (seconds) becomes the token's lifetime. ``audience`` (a
        resource URL) binds the token to one resource server (broker extension; see ``AudienceMismatch``).

        Raises:
            ScopeViolation: ``scope`` exceeds the app's ceiling (or the given launch token's).
            ScopeMismatch: the broker granted another scope (the token is released first).
            AudienceMismatch: ``audience`` was asked for and the token is not bound to it (released first).
            BrokerUnavailable, ProblemError: see :mod:`agentwrit_tools.errors`.
        """
        flow = _flows.mint(
            self._core,
            scope,
            orch_id=orch_id,
            task_id=task_id,
            ttl=ttl,
            launch_token=launch_token,
            agent_name=agent_name,
            audience=audience,
        )
        return Credential(self._driver.run(flow), core=self._core, driver=self._driver)

    def task_launcher(
        self,
        ceiling: str | Sequence[str],
        *,
        orch_id: str,
        task_id: str,
        ttl: int,
        max_ttl: int | None = None,
        agent_name: str | None = None,
    ) -> TaskLauncher:
        """Mint for one task under a ceiling the broker enforces; see :class:`TaskLauncher`.

        Args:
            ceiling: the task's scopes; every credential must be within them.
            ttl: the task's budget in seconds (the launch token's lifetime).
            max_ttl: default lifetime of each credential (≤ ``ttl``; default min(300, ttl)).
        """
        launch = TaskLaunch(
            ceiling, orch_id=orch_id, task_id=task_id, budget=ttl, max_ttl=max_ttl, agent_name=agent_name
        )
        return TaskLauncher(launch, self)

    def verify(self, token: str) -> Claims:
        """Claims of a valid token; :class:`TokenInvalid` otherwise. Local when possible (see ``_verify``)."""
        return self._driver.run(self._core.verifier.verify(token))

    def validate(self, token: str) -> Claims:
        """Like :meth:`verify`, but always asks the broker and never uses a cached answer."""
        return self._driver.run(self._core.verifier.validate(token))

    def record_approval(self, record: Mapping[str, object]) -> bool:
        """Append a person's decision on a tool call to the broker's audit log (extension; the guard calls this).

        Returns:
            True when recorded; False when the broker keeps no approval records (reference contract).
        """
        return self._driver.run(_approvals.record_approval(self._core, record))

    def health(self) -> Health:
        return self._driver.run(_admin.health(self._core.policy))

    def metrics(self) -> str:
        """The broker's Prometheus text."""
        return self._driver.run(_admin.metrics(self._core.policy))

    def _release_later(self, credential: Credential) -> Hashable | None:
        """Release ``credential`` on the background thread; its job's key, or None when it could not be queued."""
        key = ("release", credential.claims.jti)
        return key if self._background.submit(key, credential._release_flow) else None

    def _settle(self, keys: Iterable[Hashable], timeout: float = 30.0) -> None:
        """Wait for the background jobs ``keys`` (releases queued by :meth:`_release_later`)."""
        for key in keys:
            self._background.wait(key, timeout)

    def close(self) -> None:
        self._background.close()
        if self._core.nonces is not None:
            self._core.nonces.clear()
        self._driver.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _PendingCredential:
    """What ``AsyncBroker.mint`` returns: await it, or ``async with`` it to release on exit."""

    def __init__(self, broker: AsyncBroker, flow: Generator[Any, Any, _flows.Minted]) -> None:
        self._broker = broker
        self._flow = flow
        self._credential: AsyncCredential | None = None

    async def _mint(self) -> AsyncCredential:
        if self._credential is None:  # awaiting twice gives the same credential, not a second mint
            minted = await self._broker._driver.run(self._flow)
            self._credential = AsyncCredential(minted, core=self._broker._core, driver=self._broker._driver)
        return self._credential

    def __await__(self) -> Generator[Any, None, AsyncCredential]:
        return self._mint().__await__()

    async def __aenter__(self) -> AsyncCredential:
        return await self._mint()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._credential is not None:
            await self._credential.__aexit__(kind, exc, tb)


class AsyncBroker(_BrokerBase):
    """Asynchronous twin of :class:`Broker` (same arguments; ``http_client`` is an ``httpx.AsyncClient``)."""

    def __init__(
        self,
        broker_url: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(broker_url, client_id, client_secret, **options)
        self._driver = async_driver(self.settings, http_client, transport)
        self._background = AsyncBackground(self._driver)
        self.admin = AsyncAdmin(self._core, self._driver)
        """Operator calls; needs ``admin_secret``."""

    def mint(
        self,
        scope: str | Sequence[str],
        *,
        orch_id: str,
        task_id: str,
        ttl: int | None = None,
        launch_token: str | None = None,
        agent_name: str | None = None,
        audience: str | None = None,
    ) -> _PendingCredential:
        """See :meth:`Broker.mint`. ``await`` it for an :class:`AsyncCredential`, or ``async with`` it."""
        flow = _flows.mint(
            self._core,
            scope,
            orch_id=orch_id,
            task_id=task_id,
            ttl=ttl,
            launch_token=launch_token,
            agent_name=agent_name,
            audience=audience,
        )
        return _PendingCredential(self, flow)

    def task_launcher(
        self,
        ceiling: str | Sequence[str],
        *,
        orch_id: str,
        task_id: str,
        ttl: int,
        max_ttl: int | None = None,
        agent_name: str | None = None,
    ) -> AsyncTaskLauncher:
        """See :meth:`Broker.task_launcher`."""
        launch = TaskLaunch(
            ceiling, orch_id=orch_id, task_id=task_id, budget=ttl, max_ttl=max_ttl, agent_name=agent_name
        )
        return AsyncTaskLauncher(launch, self)

    async def verify(self, token: str) -> Claims:
        """See :meth:`Broker.verify`."""
        return await self._driver.run(self._core.verifier.verify(token))

    async def validate(self, token: str) -> Claims:
        """See :meth:`Broker.validate`."""
        return await self._driver.run(self._core.verifier.validate(token))

    async def record_approval(self, record: Mapping[str, object]) -> bool:
        """See :meth:`Broker.record_approval`."""
        return await self._driver.run(_approvals.record_approval(self._core, record))

    async def health(self) -> Health:
        return await self._driver.run(_admin.health(self._core.policy))

    async def metrics(self) -> str:
        return await self._driver.run(_admin.metrics(self._core.policy))

    def _release_later(self, credential: AsyncCredential) -> Hashable | None:
        """See :meth:`Broker._release_later` (None under an event loop other than asyncio's)."""
        key = ("release", credential.claims.jti)
        return key if self._background.submit(key, credential._release_flow) else None

    async def _settle(self, keys: Iterable[Hashable]) -> None:
        """See :meth:`Broker._settle`."""
        for key in keys:
            await self._background.wait(key)

    async def aclose(self) -> None:
        await self._background.aclose()
        if self._core.nonces is not None:
            self._core.nonces.clear()
        await self._driver.aclose()

    async def __aenter__(self) -> AsyncBroker:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
