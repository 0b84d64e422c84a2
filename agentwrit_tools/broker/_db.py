"""SQLite storage: the schema and the connection rules.

All broker state lives here so that a restart (or ``kill -9``) loses nothing: apps, launch tokens, nonces,
agents, issued tokens, revocation rules, the audit chain and the signing key. WAL mode with
``synchronous=NORMAL`` keeps every committed transaction across a process crash (only an OS crash can lose the
last few), at a fraction of the cost of a full fsync per request.

Concurrency model: the HTTP server owns one connection, used only from its event-loop thread, so requests are
serialised without locks and a transaction never spans an ``await``. Other threads reach the broker through
that loop (see ``_embedded``). ``busy_timeout`` only matters if a second process opens the same file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "connect", "transaction"]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_ttl INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deregistered_at TEXT
);
CREATE TABLE IF NOT EXISTS launch_tokens (
    token_hash TEXT PRIMARY KEY,
    agent_name TEXT NOT NULL,
    allowed_scope TEXT NOT NULL,
    max_ttl INTEGER NOT NULL,
    single_use INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    app_id TEXT,
    uses INTEGER NOT NULL DEFAULT 0,
    consumed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    orch_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    app_id TEXT,
    agent_name TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    jti TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    orch_id TEXT NOT NULL,
    chain_root TEXT,
    lineage TEXT NOT NULL,
    parent_lineage TEXT,
    renewed_from TEXT,
    ttl INTEGER NOT NULL,
    exp_cap INTEGER,
    iat INTEGER NOT NULL,
    exp INTEGER NOT NULL,
    renew_until INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_sub ON tokens (sub);
CREATE INDEX IF NOT EXISTS tokens_task ON tokens (task_id);
CREATE INDEX IF NOT EXISTS tokens_chain_root ON tokens (chain_root);
CREATE INDEX IF NOT EXISTS tokens_lineage ON tokens (lineage);
CREATE INDEX IF NOT EXISTS tokens_parent_lineage ON tokens (parent_lineage);
CREATE INDEX IF NOT EXISTS tokens_exp ON tokens (exp);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    level TEXT NOT NULL,
    target TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    UNIQUE (level, target)
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    timestamp TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    orch_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    resource TEXT NOT NULL,
    outcome TEXT NOT NULL,
    deleg_depth INTEGER NOT NULL,
    deleg_chain_hash TEXT NOT NULL,
    bytes_transferred INTEGER NOT NULL,
    hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_agent ON audit_events (agent_id);
CREATE INDEX IF NOT EXISTS audit_task ON audit_events (task_id);
CREATE INDEX IF NOT EXISTS audit_type ON audit_events (event_type);
CREATE INDEX IF NOT EXISTS audit_ts ON audit_events (ts_ns);
"""


def connect(path: Path | None) -> sqlite3.Connection:
    """Open (creating if needed) the broker database with the pragmas the durability promise relies on.

    Args:
        path: the database file; ``None`` for a private in-memory database.

    Raises:
        sqlite3.Error: the file cannot be opened or is not a database.
    """
    target = ":memory:" if path is None else str(path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what the code says.
    # check_same_thread=False: the connection may be opened in one thread and then used only by the server's
    # event-loop thread; it is never used from two threads at once.
    conn = sqlite3.connect(target, isolation_level=None, timeout=5.0, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        if path is not None:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        _add_missing_columns(conn)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    except BaseException:
        conn.close()
        raise
    return conn


# Columns added after the first release: (table, column, declaration). A database created before gets them on
# open; rows written before read NULL, which each user of the column documents.
_ADDED_COLUMNS = (("tokens", "renew_until", "INTEGER"),)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic unit of work: everything inside commits together or not at all."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
