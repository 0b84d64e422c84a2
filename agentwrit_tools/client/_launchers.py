"""``TaskLauncher`` and ``AsyncTaskLauncher``: mint for one task under the ceiling its launch token carries, with
what the task needs fetched ahead (its launch token, nonces) off the calls' path, and all of it ended with the task.

The policy is written once (:class:`~._launch.TaskLaunch`, :mod:`._prefetch`); these classes only drive it with
their broker client's driver and hand the jobs that do not belong on a call's path to its background runner:

* :meth:`prefetch` — the task's launch token (and the client's nonce pool, and the broker's verification keys
  the first time), as soon as the task starts;
* after each mint — a nonce refill when the pool is at half or below, and a replacement for a launch token past
  half its life (only a broker without the extension gives short-lived ones);
* :meth:`close` — waits for an unfinished launch-token job, then revokes what the task still holds (or reports
  what cannot be revoked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._credential import AsyncCredential, Credential, CredentialBase
from ._drivers import AsyncDriver, SyncDriver
from ._flows import Minted
from ._launch import IssuedLaunch, LaunchEnd, TaskLaunch
from ._prefetch import fill_nonces
from ._steps import Flow, Trips

if TYPE_CHECKING:
    from ._broker import AsyncBroker, Broker, _BrokerBase

__all__ = ["AsyncTaskLauncher", "TaskLauncher", "nonce_job"]

D = TypeVar("D", SyncDriver, AsyncDriver)
NONCES = "nonce-pool"
_LAUNCH_WAIT = 30.0  # seconds close() waits for a launch-token job still running


def nonce_job(broker: _BrokerBase) -> Any:
    """The background job that tops the broker client's nonce pool up, or None when nothing is wanted."""
    core = broker._core
    pool = core.nonces
    if pool is None or pool.wanted() <= 0:
        return None
    session = core.app or core.admin
    return lambda: fill_nonces(pool, core.policy, session, core.clock)


class _LauncherBase(Generic[D]):
    def __init__(self, launch: TaskLaunch, broker: Broker | AsyncBroker, prefetch: bool) -> None:
        self._launch: TaskLaunch = launch
        self._client: Broker | AsyncBroker = broker
        self._prefetch = prefetch and broker.prefetches

    @property
    def ceiling(self) -> tuple[str, ...]:
        return self._launch.ceiling

    @property
    def orch_id(self) -> str:
        return self._launch.orch_id

    @property
    def task_id(self) -> str:
        return self._launch.task_id

    @property
    def max_ttl(self) -> int:
        """The default lifetime of each credential, in seconds."""
        return self._launch.max_ttl

    def remaining(self) -> float:
        """Seconds left in the task's budget."""
        return self._launch.remaining()

    def launch_tokens(self) -> list[IssuedLaunch]:
        """Launch tokens created since the last call of this (the task reports them in its trace)."""
        return self._launch.unreported()

    @property
    def holds_launch_tokens(self) -> bool:
        """The task has created at least one launch token (so there is something to end)."""
        return bool(self._launch.issued)

    def unrevoked(self) -> LaunchEnd:
        """What is left alive when the revocation did not go through (see :meth:`TaskLaunch.unrevoked`)."""
        return self._launch.unrevoked()

    def _launch_key(self, ttl: int) -> tuple[str, int, int]:
        return ("launch", id(self._launch), ttl)

    def _submit_launch(self, ttl: int, *, replace_aging: bool) -> None:
        launch, core = self._launch, self._client._core
        job = lambda: launch.token_flow(core, ttl, prefetched=True, replace_aging=replace_aging)  # noqa: E731
        self._client._background.submit(self._launch_key(ttl), job, urgent=True)

    def _submit_nonces(self) -> None:
        job = nonce_job(self._client)
        if job is not None:
            self._client._background.submit(NONCES, job)

    def _submit_keys(self) -> None:
        verifier = self._client._core.verifier
        if verifier.mode == "unknown":
            self._client._background.submit("verifier-keys", verifier.warm, urgent=True)

    def _pending_launch_keys(self) -> list[tuple[str, int, int]]:
        return [self._launch_key(ttl) for ttl in {self._launch.max_ttl, *(i.ttl for i in self._launch.issued)}]

    def prefetch(self) -> None:
        """Fetch the task's launch token (default ttl) and nonces in the background, ahead of the first call.

        Sync: on the broker client's background thread. Async: as asyncio tasks (nothing under another loop).
        """
        if self._prefetch and not self._launch.closed:
            self._submit_launch(min(self._launch.max_ttl, max(1, int(self._launch.remaining()))), replace_aging=False)
            self._submit_keys()
            self._submit_nonces()

    def _minted(self, credential: CredentialBase[Any], minted: Minted, trips: Trips) -> None:
        """Record what the mint cost on the caller's path; queue what the next calls will want fetched ahead."""
        credential.round_trips = trips.count
        credential.prefetched = minted.prefetched
        if self._prefetch:
            self._submit_nonces()
            for aging in self._launch.aging():
                self._submit_launch(aging, replace_aging=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task_id={self.task_id!r}, ceiling={list(self.ceiling)!r})"


class TaskLauncher(_LauncherBase[SyncDriver]):
    """Mints credentials for one task under a multi-use launch token whose ``allowed_scope`` is the ceiling.

    The broker refuses (``ScopeViolation``) any scope outside the ceiling, and stops registering once the task's
    budget is spent. See the module docstring for what is fetched ahead and how it ends.
    """

    def __init__(self, launch: TaskLaunch, broker: Broker, *, prefetch: bool = True) -> None:
        super().__init__(launch, broker, prefetch)
        self._broker = broker

    def mint(self, scope: str | Sequence[str], *, ttl: int | None = None, audience: str | None = None) -> Credential:
        """A credential for exactly ``scope`` (⊆ ceiling), living ``ttl`` seconds (default ``max_ttl``), bound to
        the resource ``audience`` when given (see :meth:`Broker.mint`)."""
        b = self._broker
        trips = Trips()
        minted = b._driver.run(self._launch.mint(b._core, scope, ttl=ttl, audience=audience), trips)
        credential = Credential(minted, core=b._core, driver=b._driver)
        self._minted(credential, minted, trips)
        return credential

    def close(self) -> LaunchEnd:
        """End the task's launch tokens (see :meth:`TaskLaunch.close_flow`); waits for a launch job still running.

        Raises:
            AgentWritError: the revocation did not go through.
        """
        for key in self._pending_launch_keys():
            self._broker._background.wait(key, _LAUNCH_WAIT)
        b = self._broker
        return b._driver.run(self._launch.close_flow(b._core))


class AsyncTaskLauncher(_LauncherBase[AsyncDriver]):
    """See :class:`TaskLauncher`."""

    def __init__(self, launch: TaskLaunch, broker: AsyncBroker, *, prefetch: bool = True) -> None:
        super().__init__(launch, broker, prefetch)
        self._broker = broker

    async def mint(
        self, scope: str | Sequence[str], *, ttl: int | None = None, audience: str | None = None
    ) -> AsyncCredential:
        """See :meth:`TaskLauncher.mint`."""
        b = self._broker
        trips = Trips()
        minted = await b._driver.run(self._launch.mint(b._core, scope, ttl=ttl, audience=audience), trips)
        credential = AsyncCredential(minted, core=b._core, driver=b._driver)
        self._minted(credential, minted, trips)
        return credential

    async def close(self) -> LaunchEnd:
        """See :meth:`TaskLauncher.close`."""
        for key in self._pending_launch_keys():
            await self._broker._background.wait(key)
        b = self._broker
        flow: Flow[LaunchEnd] = self._launch.close_flow(b._core)
        return await b._driver.run(flow)
