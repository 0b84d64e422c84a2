"""The PostgreSQL backend: N stateless broker replicas over one database (psycopg 3, async, pooled).

Every replica keeps a pool of connections (``db_pool_size``) and runs each operation on one of them; a write is
one transaction. What must happen one at a time across replicas — appending to the audit chain, adding
revocation rules, and the reads a revocation decision rests on — runs under one PostgreSQL advisory
transaction lock taken at the first such step (:meth:`PostgresTx.serialize`), so the chain stays linear and
rule ``seq`` order is commit order. Single-use things (nonces, launch tokens) are consumed by one conditional
statement each, so of two replicas racing on one, exactly one wins.

Revocations reach the other replicas through :class:`~._mirror.RevocationMirror`: a trigger NOTIFYs
``agentwrit_revocations`` on every rule insert; each replica LISTENs on a connection of its own and reads the new
rules on another (so a busy pool never delays them), and also polls every ``revocation_poll_interval`` as a
backstop and to prove its copy fresh.

Faults: a wrong URL or an unreachable server at start is one :class:`ConfigurationError` line (the password
never shown); a database lost while serving makes operations raise :class:`~._store.StoreUnavailable` (503), and
the pool replaces broken connections once it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..errors import ConfigurationError
from ._migrations import LATEST, MIGRATIONS, SERIAL_LOCK
from ._mirror import RevocationMirror
from ._settings import redact_url
from ._sqltx import ADD_RULE, CHILDREN, SqlTx, token_record
from ._store import Contended, StoreUnavailable, TokenRecord

__all__ = ["PostgresStore", "PostgresTx", "connect_once"]

logger = logging.getLogger("agentwrit_tools.broker")

MIGRATION_LOCK = SERIAL_LOCK + 1
CHANNEL = "agentwrit_revocations"
CONTENDED = "agentwrit: contended"  # what agentwrit_revoke_leaf raises when its assumption fails
_CONNECT_TIMEOUT = 5
_POOL_TIMEOUT = 3.0
_FAULTS = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The shared SQL's ``?`` placeholders as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresTx(SqlTx):
    """The operations on one pooled connection (inside a transaction, or autocommit reads).

    A transaction runs in psycopg's pipeline mode: statements whose result is not needed (inserts, the lock) are
    sent without waiting for an answer, so a registration costs three round trips, not ten; a read, or
    :meth:`_run`'s row count, waits for everything sent before it.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        in_transaction: bool,
        pipeline: psycopg.AsyncPipeline | None = None,
    ) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._in_transaction = in_transaction
        self._serialized = False
        self.added: list[tuple[str, str, int | None]] = []
        self.events: list[dict[str, Any]] = []
        self._leaf: tuple[str, str, int | None, str | None] | None = None

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = await self._conn.execute(_pg(sql), args)
        return await cur.fetchall()

    async def _row(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        cur = await self._conn.execute(_pg(sql), args)
        return await cur.fetchone()

    async def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        cur = await self._conn.execute(_pg(sql), args)
        if self._pipeline is not None:
            await self._pipeline.sync()
        return cur.rowcount

    async def _send(self, sql: str, args: Sequence[Any] = ()) -> None:
        await self._conn.execute(_pg(sql), args)

    async def serialize(self) -> None:
        if self._in_transaction and not self._serialized:
            # Sent, not awaited: the server grants it before it runs anything this transaction sends next.
            await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (SERIAL_LOCK,))
            self._serialized = True

    async def append_audit(self, fields: dict[str, Any]) -> None:
        """Kept until commit, when ``agentwrit_append_audit`` chains them inside the database under the lock —
        which is then held for the server's own work only, not for round trips to this replica."""
        if not self._in_transaction:
            raise RuntimeError("audit events are appended in a transaction")
        self.events.append(fields)

    async def flush_and_commit(self) -> None:
        """Chain the buffered events and commit, in one round trip."""
        if self._leaf is not None:
            await self._conn.execute("SELECT agentwrit_revoke_leaf(%s, %s, %s, %s)", self._leaf)
        if self.events:
            await self._conn.execute("SELECT agentwrit_append_audit(%s)", (Jsonb(self.events),))
        await self._conn.execute("COMMIT")
        if self._pipeline is not None:
            await self._pipeline.sync()

    async def add_rule(self, level: str, target: str, revoked_at: str, forget_after: int | None) -> bool:
        added = await super().add_rule(level, target, revoked_at, forget_after)
        if added:
            self.added.append((level, target, forget_after))
        return added

    async def add_token_rule(
        self,
        jti: str,
        revoked_at: str,
        forget_after: int | None,
        *,
        children_of: str | None = None,
        optimistic: bool = False,
    ) -> tuple[bool, list[TokenRecord]]:
        """Both statements sent before either answer is awaited: one round trip under the ordering lock.

        Optimistic (and no ordering lock taken yet): nothing is sent now; at commit ``agentwrit_revoke_leaf``
        takes the lock, adds the rule and checks it was new and that nothing was delegated from the lineage —
        else the transaction fails with :class:`Contended`.
        """
        if optimistic and not self._serialized and self._leaf is None:
            self._leaf = (jti, revoked_at, forget_after, children_of)
            self.added.append(("token", jti, forget_after))
            return True, []
        await self.serialize()
        inserted = await self._conn.execute(_pg(ADD_RULE), ("token", jti, revoked_at, forget_after))
        children = await self._conn.execute(_pg(CHILDREN), (children_of,)) if children_of is not None else None
        if children is not None:
            rows = await children.fetchall()  # answers both: the pipeline syncs everything sent before
        else:
            rows = []
            if self._pipeline is not None:
                await self._pipeline.sync()
        added = inserted.rowcount == 1
        if added:
            self.added.append(("token", jti, forget_after))
        return added, [token_record(row) for row in rows] if added else []


def _reason(exc: BaseException) -> str:
    """The first line of a driver error (libpq never puts the password in it)."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


async def connect_once(url: str) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection, or a one-line :class:`ConfigurationError` naming the (redacted) URL."""
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
    except (psycopg.Error, ValueError) as exc:
        raise ConfigurationError(f"cannot connect to the database {redact_url(url)}: {_reason(exc)}") from None


async def migrate(conn: psycopg.AsyncConnection[Any]) -> int:
    """Bring the schema up to :data:`LATEST` (once, even with replicas starting together); returns the version."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        current = await _version(conn)
        if current > LATEST:
            raise ConfigurationError(
                f"the database is at schema version {current}, newer than this broker knows ({LATEST}): upgrade it"
            )
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            async with conn.transaction():
                await conn.execute(migration.postgresql)
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(migration.version),),
                )
            current = migration.version
        return current
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


async def _version(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT to_regclass('meta') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    found = await cur.fetchone()
    return int(found[0]) if found else 0


class PostgresStore:
    """The broker's state in a PostgreSQL database shared by every replica."""

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        notify: bool = True,
        poll_interval: float = 0.25,
        max_staleness: float = 1.0,
    ) -> None:
        self._url = url
        self._pool_size = pool_size
        self._notify = notify
        self._poll_interval = poll_interval
        self.mirror = RevocationMirror(max_staleness)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._sync_conn: psycopg.AsyncConnection[Any] | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._checking: asyncio.Task[None] | None = None
        self._closing = False

    def describe(self) -> str:
        return redact_url(self._url)

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        conn = await connect_once(self._url)
        try:
            await migrate(conn)
        except psycopg.Error as exc:
            await conn.close()
            raise ConfigurationError(f"cannot migrate the database {self.describe()}: {_reason(exc)}") from None
        except BaseException:
            await conn.close()
            raise
        self._sync_conn = conn
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._url,
            min_size=min(2, self._pool_size),
            max_size=self._pool_size,
            kwargs={"autocommit": True},
            timeout=_POOL_TIMEOUT,
            open=False,
            name="agentwrit-broker",
        )
        try:
            await pool.open(wait=True, timeout=10)
            await self._sync()
        except BaseException:
            await pool.close()
            await conn.close()
            raise
        self._pool = pool
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll(), name="agentwrit-revocation-poll")]
        if self._notify:
            self._tasks.append(loop.create_task(self._listen(), name="agentwrit-revocation-listen"))

    async def close(self) -> None:
        # The poll loop ends on the flag (a cancellation racing wait_for's timeout can be lost on Python 3.11);
        # the listener, waiting for a notification, is cancelled.
        self._closing = True
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks[1:]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        conn, self._sync_conn = self._sync_conn, None
        if conn is not None:
            await conn.close()

    # -- operations -------------------------------------------------------------------------------------------

    def _live_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise StoreUnavailable()
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTx]:
        pool = self._live_pool()
        try:
            async with pool.connection() as conn:
                try:
                    async with conn.pipeline() as pipeline:
                        await conn.execute("BEGIN")
                        tx = PostgresTx(conn, in_transaction=True, pipeline=pipeline)
                        yield tx
                        await tx.flush_and_commit()
                except BaseException:
                    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                        with contextlib.suppress(psycopg.Error):
                            await conn.execute("ROLLBACK")
                    raise
        except psycopg.errors.RaiseException as exc:
            if exc.diag.message_primary != CONTENDED:
                raise
            raise Contended() from None
        except _FAULTS:
            self._check_pool()
            raise StoreUnavailable() from None
        self.mirror.add(tx.added)  # committed: this replica refuses those tokens from now on

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[PostgresTx]:
        pool = self._live_pool()
        try:
            async with pool.connection() as conn:
                yield PostgresTx(conn, in_transaction=False)
        except _FAULTS:
            self._check_pool()
            raise StoreUnavailable() from None

    def _check_pool(self) -> None:
        """After a fault, have the pool test its idle connections now, so broken ones go before they are lent."""
        pool = self._pool
        if pool is None or (self._checking is not None and not self._checking.done()):
            return
        self._checking = asyncio.get_running_loop().create_task(_quietly(pool.check()))

    def revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        return self.mirror.revoked(jti, sub, task_id, chain_root)

    async def ping(self) -> bool:
        try:
            async with self._live_pool().connection(timeout=1.0) as conn:
                await conn.execute("SELECT 1")
        except (*_FAULTS, StoreUnavailable):
            return False
        return True

    async def schema_version(self) -> int:
        async with self.reader() as tx:
            value = await tx.get_meta("schema_version")
        return int(value) if value else 0

    # -- the revocation mirror --------------------------------------------------------------------------------

    async def _sync(self) -> None:
        """Read every rule after the last one seen, on the store's own connection (never waits for the pool)."""
        conn = self._sync_conn
        if conn is None or conn.closed:
            conn = self._sync_conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT
            )
        mirror = self.mirror
        started = mirror.sync_started()
        while True:
            cur = await conn.execute(
                "SELECT seq, level, target, forget_after FROM revocations WHERE seq > %s ORDER BY seq LIMIT 5000",
                (mirror.last_seq,),
            )
            rows = await cur.fetchall()
            mirror.apply(started, rows, complete=len(rows) < 5000)
            if len(rows) < 5000:
                return

    async def _poll(self) -> None:
        last_forget = time.monotonic()
        while await self._woken():
            try:
                await self._sync()
            except (psycopg.Error, OSError) as exc:
                logger.debug("revocation sync failed: %s", type(exc).__name__)
                await _close_quietly(self._sync_conn)
                self._sync_conn = None
                await asyncio.sleep(self._poll_interval)
            if time.monotonic() - last_forget > 60:
                self.mirror.forget(time.time() - 60)
                last_forget = time.monotonic()

    async def _woken(self) -> bool:
        """Wait for a notification or the poll interval; False once the store is closing."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        self._wake.clear()
        return not self._closing

    async def _listen(self) -> None:
        while not self._closing:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()  # catch up on what committed while not listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except (psycopg.Error, OSError) as exc:
                logger.debug("revocation listener lost its connection: %s", type(exc).__name__)
                await asyncio.sleep(self._poll_interval)


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable


async def _close_quietly(conn: psycopg.AsyncConnection[Any] | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()
