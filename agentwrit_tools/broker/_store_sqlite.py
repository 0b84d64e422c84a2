"""The SQLite backend: one file, one process — the embedded default.

WAL mode with ``synchronous=NORMAL`` keeps every committed transaction across a process crash (only an OS crash
can lose the last few), at a fraction of the cost of a full fsync per request. The file and its ``-wal``/``-shm``
companions are the broker's alone (:mod:`._files`).

Concurrency model: one connection, used only from the event-loop thread that serves requests, so requests are
serialised without locks and no statement leaves the thread. The store's operations are coroutines that never
suspend; a transaction is therefore never interleaved with another request's work (an :class:`asyncio.Lock`
guards that promise, uncontended by construction). Checkpoints run in a thread of their own
(:mod:`._checkpoint`). ``busy_timeout`` only matters if a second process opens the same file (the CLI's
``broker keys rotate`` while a broker serves).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ._checkpoint import SAFETY_PAGES, Checkpointer
from ._files import check_private, create_private, db_files, tighten
from ._migrations import LATEST, MIGRATIONS
from ._sqltx import _REVOKED, SqlTx
from ._store import StoreUnavailable

__all__ = ["SqliteStore", "SqliteTx"]


class SqliteTx(SqlTx):
    """The operations on the store's one connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            raise StoreUnavailable() from None

    async def _row(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self._conn.execute(sql, args).fetchone()
        except sqlite3.OperationalError:
            raise StoreUnavailable() from None
        return row

    async def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        try:
            return self._conn.execute(sql, args).rowcount
        except sqlite3.OperationalError:
            raise StoreUnavailable() from None


class SqliteStore:
    """The broker's state in one SQLite file (``None``: a private in-memory database, lost on close).

    Args:
        path: the database file.
        fix_permissions: make an existing file others can reach private instead of refusing it.
    """

    kind = "sqlite"

    def __init__(self, path: Path | None, *, fix_permissions: bool = False) -> None:
        self.path = path
        self._fix = fix_permissions
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._lock = asyncio.Lock()

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection (SQLite only: for tests and tools that inspect the file's own tables)."""
        if self._conn is None:
            raise StoreUnavailable()
        return self._conn

    def describe(self) -> str:
        return str(self.path) if self.path is not None else "in-memory SQLite"

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def open(self) -> None:
        self.open_now()

    def open_now(self) -> None:
        """:meth:`open` for callers without an event loop (the CLI's ``broker migrate``)."""
        files = db_files(self.path) if self.path is not None else []
        check_private(files, fix=self._fix)
        if self.path is not None:
            create_private(self.path)  # 0600 before SQLite opens it: its -wal and -shm follow its mode
        target = ":memory:" if self.path is None else str(self.path)
        try:
            # isolation_level=None: BEGIN/COMMIT are ours, so a transaction is exactly what the code says.
            # check_same_thread=False: opened in one thread, then used only by the server's event-loop thread.
            conn = sqlite3.connect(target, isolation_level=None, timeout=5.0, check_same_thread=False)
        except sqlite3.Error:
            raise self._cannot_open() from None
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            if self.path is not None:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn)
            tighten(files)
        except sqlite3.Error:
            conn.close()
            raise self._cannot_open() from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if self.path is not None:  # checkpoints off the request path (see _checkpoint)
            conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_PAGES}")
            self._checkpointer = Checkpointer(self.path).start()

    def _cannot_open(self) -> ConfigurationError:
        return ConfigurationError(
            f"cannot open or create the database {self.describe()} (check the path and its permissions)"
        )

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """:meth:`close` for callers without an event loop."""
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- operations -------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        async with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                raise StoreUnavailable() from None
            try:
                yield SqliteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError:
                conn.execute("ROLLBACK")
                raise StoreUnavailable() from None

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[SqliteTx]:
        yield SqliteTx(self.conn)

    def revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        try:
            return self.conn.execute(_REVOKED, (jti, sub, task_id, chain_root)).fetchone() is not None
        except sqlite3.OperationalError:
            raise StoreUnavailable() from None

    async def ping(self) -> bool:
        try:
            self.conn.execute("SELECT 1").fetchone()
        except (sqlite3.Error, StoreUnavailable):
            return False
        return True

    async def schema_version(self) -> int:
        return _version(self.conn)


def _version(conn: sqlite3.Connection) -> int:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _migrate(conn: sqlite3.Connection) -> None:
    current = _version(conn)
    if current > LATEST:
        raise ConfigurationError(
            f"the database is at schema version {current}, newer than this broker knows ({LATEST}): upgrade it"
        )
    if current >= 1:
        _add_renew_until(conn)
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sqlite):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(migration.version),),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _add_renew_until(conn: sqlite3.Connection) -> None:
    """Databases from before renewal lines had an end lack the column; rows written then read NULL."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(tokens)")}
    if "renew_until" not in present:
        conn.execute("ALTER TABLE tokens ADD COLUMN renew_until INTEGER")
