"""Versioned schema migrations, one list for both backends.

Each :class:`Migration` has a version, a one-line description and its SQL for SQLite and for PostgreSQL. The
database records the version it is at (``meta.schema_version``); opening a store applies every later migration
in order, each in its own transaction (PostgreSQL: under an advisory lock, so replicas starting together migrate
once), and ``agentwrit-tools broker migrate`` does the same without serving. A database newer than this code is
refused rather than guessed at.

Version 1 is the schema the SQLite broker always had (databases created before migrations existed report it);
version 2 adds what several replicas need: signing keys as rows (rotation), the expiry columns housekeeping
purges by, and on PostgreSQL the NOTIFY trigger on new revocation rules and ``agentwrit_append_audit``, which
chains a transaction's audit events inside the database at commit (see :mod:`._store_pg`). Its hash is the one
:func:`agentwrit_tools.auditchain.event_hash` computes; the conformance suite verifies PostgreSQL's chains with
that function. Version 3 adds the thumbprint of the key a key-bound token is bound to (extension).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LATEST", "MIGRATIONS", "SERIAL_LOCK", "Migration"]

SERIAL_LOCK = 0x61677772_6974
"""PostgreSQL's advisory lock that serialises audit appends and revocation writes across replicas ("agwrit")."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: str
    postgresql: str


_V1_SQLITE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY, name TEXT NOT NULL, client_id TEXT NOT NULL UNIQUE, secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL, token_ttl INTEGER NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, deregistered_at TEXT
);
CREATE TABLE IF NOT EXISTS launch_tokens (
    token_hash TEXT PRIMARY KEY, agent_name TEXT NOT NULL, allowed_scope TEXT NOT NULL, max_ttl INTEGER NOT NULL,
    single_use INTEGER NOT NULL, expires_at REAL NOT NULL, created_by TEXT NOT NULL, app_id TEXT,
    uses INTEGER NOT NULL DEFAULT 0, consumed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, orch_id TEXT NOT NULL, task_id TEXT NOT NULL,
    scope TEXT NOT NULL, app_id TEXT, agent_name TEXT NOT NULL, registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    jti TEXT PRIMARY KEY, sub TEXT NOT NULL, kind TEXT NOT NULL, task_id TEXT NOT NULL, orch_id TEXT NOT NULL,
    chain_root TEXT, lineage TEXT NOT NULL, parent_lineage TEXT, renewed_from TEXT, ttl INTEGER NOT NULL,
    exp_cap INTEGER, iat INTEGER NOT NULL, exp INTEGER NOT NULL, renew_until INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_sub ON tokens (sub);
CREATE INDEX IF NOT EXISTS tokens_task ON tokens (task_id);
CREATE INDEX IF NOT EXISTS tokens_chain_root ON tokens (chain_root);
CREATE INDEX IF NOT EXISTS tokens_lineage ON tokens (lineage);
CREATE INDEX IF NOT EXISTS tokens_parent_lineage ON tokens (parent_lineage);
CREATE INDEX IF NOT EXISTS tokens_exp ON tokens (exp);
CREATE TABLE IF NOT EXISTS revocations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, level TEXT NOT NULL, target TEXT NOT NULL, revoked_at TEXT NOT NULL,
    UNIQUE (level, target)
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, timestamp TEXT NOT NULL, ts_ns INTEGER NOT NULL,
    event_type TEXT NOT NULL, agent_id TEXT NOT NULL, task_id TEXT NOT NULL, orch_id TEXT NOT NULL,
    detail TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL, deleg_depth INTEGER NOT NULL,
    deleg_chain_hash TEXT NOT NULL, bytes_transferred INTEGER NOT NULL, hash TEXT NOT NULL, prev_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_agent ON audit_events (agent_id);
CREATE INDEX IF NOT EXISTS audit_task ON audit_events (task_id);
CREATE INDEX IF NOT EXISTS audit_type ON audit_events (event_type);
CREATE INDEX IF NOT EXISTS audit_ts ON audit_events (ts_ns);
CREATE TABLE IF NOT EXISTS token_audiences (jti TEXT PRIMARY KEY, audience TEXT NOT NULL);
"""

_V1_POSTGRESQL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE apps (
    app_id TEXT PRIMARY KEY, name TEXT NOT NULL, client_id TEXT NOT NULL UNIQUE, secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL, token_ttl BIGINT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, deregistered_at TEXT
);
CREATE TABLE launch_tokens (
    token_hash TEXT PRIMARY KEY, agent_name TEXT NOT NULL, allowed_scope TEXT NOT NULL, max_ttl BIGINT NOT NULL,
    single_use INTEGER NOT NULL, expires_at DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, app_id TEXT,
    uses BIGINT NOT NULL DEFAULT 0, consumed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE nonces (nonce TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL);
CREATE INDEX nonces_expiry ON nonces (expires_at);
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, orch_id TEXT NOT NULL, task_id TEXT NOT NULL,
    scope TEXT NOT NULL, app_id TEXT, agent_name TEXT NOT NULL, registered_at TEXT NOT NULL
);
CREATE TABLE tokens (
    jti TEXT PRIMARY KEY, sub TEXT NOT NULL, kind TEXT NOT NULL, task_id TEXT NOT NULL, orch_id TEXT NOT NULL,
    chain_root TEXT, lineage TEXT NOT NULL, parent_lineage TEXT, renewed_from TEXT, ttl BIGINT NOT NULL,
    exp_cap BIGINT, iat BIGINT NOT NULL, exp BIGINT NOT NULL, renew_until BIGINT
);
CREATE INDEX tokens_sub ON tokens (sub);
CREATE INDEX tokens_task ON tokens (task_id);
CREATE INDEX tokens_chain_root ON tokens (chain_root);
CREATE INDEX tokens_lineage ON tokens (lineage);
CREATE INDEX tokens_parent_lineage ON tokens (parent_lineage);
CREATE INDEX tokens_exp ON tokens (exp);
CREATE TABLE revocations (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, level TEXT NOT NULL, target TEXT NOT NULL,
    revoked_at TEXT NOT NULL, UNIQUE (level, target)
);
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, timestamp TEXT NOT NULL, ts_ns BIGINT NOT NULL,
    event_type TEXT NOT NULL, agent_id TEXT NOT NULL, task_id TEXT NOT NULL, orch_id TEXT NOT NULL,
    detail TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL, deleg_depth BIGINT NOT NULL,
    deleg_chain_hash TEXT NOT NULL, bytes_transferred BIGINT NOT NULL, hash TEXT NOT NULL, prev_hash TEXT NOT NULL
);
CREATE INDEX audit_agent ON audit_events (agent_id);
CREATE INDEX audit_task ON audit_events (task_id);
CREATE INDEX audit_type ON audit_events (event_type);
CREATE INDEX audit_ts ON audit_events (ts_ns);
CREATE TABLE token_audiences (jti TEXT PRIMARY KEY, audience TEXT NOT NULL);
"""

# SQLite keeps the signing key in meta until version 2; the key module moves it into signing_keys on open
# (it may be sealed, and only the keyring opens it).
_V2_SQLITE = """
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY, private_key TEXT NOT NULL, created_at REAL NOT NULL, retire_after REAL
);
ALTER TABLE revocations ADD COLUMN forget_after INTEGER;
UPDATE revocations SET forget_after = (SELECT t.exp FROM tokens t WHERE t.jti = revocations.target)
    WHERE level = 'token';
CREATE INDEX revocations_forget ON revocations (forget_after);
ALTER TABLE agents ADD COLUMN registered_epoch INTEGER;
UPDATE agents SET registered_epoch = CAST(strftime('%s', substr(registered_at, 1, 19)) AS INTEGER);
CREATE INDEX agents_epoch ON agents (registered_epoch);
CREATE INDEX agents_app ON agents (app_id);
CREATE INDEX launch_tokens_expiry ON launch_tokens (expires_at);
"""

_V2_POSTGRESQL = """
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY, private_key TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    retire_after DOUBLE PRECISION
);
ALTER TABLE revocations ADD COLUMN forget_after BIGINT;
CREATE INDEX revocations_forget ON revocations (forget_after);
ALTER TABLE agents ADD COLUMN registered_epoch BIGINT;
CREATE INDEX agents_epoch ON agents (registered_epoch);
CREATE INDEX agents_app ON agents (app_id);
CREATE INDEX launch_tokens_expiry ON launch_tokens (expires_at);
CREATE FUNCTION agentwrit_revocation_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('agentwrit_revocations', '');
    RETURN NULL;
END $$;
CREATE TRIGGER revocations_notify AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION agentwrit_revocation_added();
CREATE FUNCTION agentwrit_revoke_leaf(p_jti text, p_revoked_at text, p_forget_after bigint, p_lineage text)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    inserted bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(@SERIAL_LOCK@);
    INSERT INTO revocations (level, target, revoked_at, forget_after)
        VALUES ('token', p_jti, p_revoked_at, p_forget_after)
        ON CONFLICT (level, target) DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF inserted <> 1 OR (p_lineage IS NOT NULL
            AND EXISTS (SELECT 1 FROM tokens t WHERE t.parent_lineage = p_lineage)) THEN
        RAISE EXCEPTION 'agentwrit: contended';
    END IF;
END $$;
CREATE FUNCTION agentwrit_append_audit(events jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    tail_seq bigint;
    tail_hash text;
    ev jsonb;
    ts_ns bigint;
    stamp text;
    event_id text;
    digest text;
BEGIN
    PERFORM pg_advisory_xact_lock(@SERIAL_LOCK@);
    SELECT seq, hash INTO tail_seq, tail_hash FROM audit_events ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        tail_seq := 0;
        tail_hash := repeat('0', 64);
    END IF;
    FOR ev IN SELECT value FROM jsonb_array_elements(events) LOOP
        tail_seq := tail_seq + 1;
        ts_ns := floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000;
        stamp := to_char(to_timestamp(ts_ns / 1000000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
            || '.' || lpad((ts_ns % 1000000000)::text, 9, '0') || 'Z';
        event_id := 'evt-' || CASE WHEN tail_seq >= 100000 THEN tail_seq::text ELSE lpad(tail_seq::text, 6, '0') END;
        digest := encode(sha256(convert_to(concat_ws('|', tail_hash, event_id, stamp, ev->>'event_type',
            ev->>'agent_id', ev->>'task_id', ev->>'orch_id', ev->>'detail', ev->>'resource', ev->>'outcome',
            ev->>'deleg_depth', ev->>'deleg_chain_hash', ev->>'bytes_transferred'), 'UTF8')), 'hex');
        INSERT INTO audit_events (seq, ts_ns, id, timestamp, event_type, agent_id, task_id, orch_id, detail, resource,
            outcome, deleg_depth, deleg_chain_hash, bytes_transferred, hash, prev_hash)
        VALUES (tail_seq, ts_ns, event_id, stamp, ev->>'event_type', ev->>'agent_id', ev->>'task_id',
            ev->>'orch_id', ev->>'detail', ev->>'resource', ev->>'outcome', (ev->>'deleg_depth')::bigint,
            ev->>'deleg_chain_hash', (ev->>'bytes_transferred')::bigint, digest, tail_hash);
        tail_hash := digest;
    END LOOP;
END $$;
"""

# Key-bound tokens (extension): the thumbprint a token is bound to is a column of its row. A SQLite database
# written by a broker that kept bindings in a table of their own has them moved into the column.
_V3_SQLITE = """
ALTER TABLE tokens ADD COLUMN jkt TEXT;
CREATE TABLE IF NOT EXISTS token_bindings (jti TEXT PRIMARY KEY, jkt TEXT NOT NULL);
UPDATE tokens SET jkt = (SELECT b.jkt FROM token_bindings b WHERE b.jti = tokens.jti);
DROP TABLE token_bindings;
"""

_V3_POSTGRESQL = """
ALTER TABLE tokens ADD COLUMN jkt TEXT;
"""

# Task-bound launch tokens (extension): the task a launch token is bound to, and the index its revocation uses.
_V4 = """
ALTER TABLE launch_tokens ADD COLUMN task_id TEXT;
CREATE INDEX IF NOT EXISTS launch_tokens_task ON launch_tokens (task_id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "apps, launch tokens, nonces, agents, tokens, revocations, audit", _V1_SQLITE, _V1_POSTGRESQL),
    Migration(
        2,
        "signing keys as rows; expiry columns for housekeeping",
        _V2_SQLITE,
        _V2_POSTGRESQL.replace("@SERIAL_LOCK@", str(SERIAL_LOCK)),
    ),
    Migration(3, "key-bound tokens: the bound key's thumbprint on the token row", _V3_SQLITE, _V3_POSTGRESQL),
    Migration(4, "task-bound launch tokens: the task on the launch token row", _V4, _V4),
)
LATEST = MIGRATIONS[-1].version
