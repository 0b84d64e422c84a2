"""The store's operations in SQL, written once for both backends.

Statements use ``?`` placeholders and the SQL both SQLite (3.35+) and PostgreSQL speak (``ON CONFLICT … DO
NOTHING``, ``RETURNING``); a backend supplies the ways of running one (:meth:`SqlTx._rows`, :meth:`SqlTx._row`,
:meth:`SqlTx._run`, and :meth:`SqlTx._send` for a statement whose result nobody waits for) and
:meth:`SqlTx.serialize`, which makes what follows it in the
transaction run one transaction at a time across every process sharing the database (PostgreSQL: an advisory
transaction lock; SQLite: already so, its write transactions are exclusive).

Every order-sensitive step calls :meth:`~SqlTx.serialize` first: appending to the audit chain (so the chain is
one line, each event linked to the one committed before it), adding a revocation rule (so ``seq`` order is
commit order and the feed never skips a rule committed late), and the reads a revocation decision rests on (a
presenter's rules, live tokens, delegated children), so a delegation and a revocation of its delegator cannot
both succeed unseen by each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..auditchain import GENESIS_HASH, HASHED_FIELDS, event_hash
from ._store import AgentRow, AppRow, FeedRow, KeyRow, LaunchTokenRow, TokenRecord
from ._timefmt import now_ns, rfc3339_nano

__all__ = ["ADD_RULE", "AUDIT_COLUMNS", "CHILDREN", "SqlTx", "token_record"]

AUDIT_COLUMNS = (*HASHED_FIELDS, "hash", "prev_hash")  # the API's fields, in the order the hash covers them
_AUDIT_LIST = ", ".join(AUDIT_COLUMNS)
_APP_COLUMNS = (
    "app_id, name, client_id, secret_hash, scopes, token_ttl, status, created_at, updated_at, deregistered_at"
)
_RECORD_COLUMNS = (
    "t.jti, t.sub, t.task_id, t.orch_id, t.chain_root, t.lineage, t.exp, t.kind, t.parent_lineage, t.renewed_from,"
    " t.ttl, t.exp_cap, t.iat, t.renew_until, a.audience, t.jkt"
)
_RECORD_FROM = "tokens t LEFT JOIN token_audiences a ON a.jti = t.jti"
ADD_RULE = (
    "INSERT INTO revocations (level, target, revoked_at, forget_after) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (level, target) DO NOTHING"
)
CHILDREN = f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE t.parent_lineage = ?"  # noqa: S608
_MATCH_COLUMNS = frozenset({"jti", "sub", "task_id", "chain_root"})
_REVOKED = (
    "SELECT 1 FROM revocations WHERE (level = 'token' AND target = ?) OR (level = 'agent' AND target = ?)"
    " OR (level = 'task' AND target = ?) OR (level = 'chain' AND target = ?) LIMIT 1"
)
_PURGE = {
    "nonces": "DELETE FROM nonces WHERE nonce IN (SELECT nonce FROM nonces WHERE expires_at < ? LIMIT ?)",
    "launch_tokens": "DELETE FROM launch_tokens WHERE token_hash IN"
    " (SELECT token_hash FROM launch_tokens WHERE expires_at < ? LIMIT ?)",
    "revocations": "DELETE FROM revocations WHERE seq IN"
    " (SELECT seq FROM revocations WHERE forget_after IS NOT NULL AND forget_after < ? LIMIT ?)",
    "agents": "DELETE FROM agents WHERE agent_id IN (SELECT agent_id FROM agents WHERE registered_epoch < ?"
    " AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.sub = agents.agent_id) LIMIT ?)",
    "signing_keys": "DELETE FROM signing_keys WHERE kid IN"
    " (SELECT kid FROM signing_keys WHERE retire_after IS NOT NULL AND retire_after < ? LIMIT ?)",
}


_LAUNCH_COLUMNS = (
    "token_hash, agent_name, allowed_scope, max_ttl, single_use, expires_at, created_by, app_id, consumed, task_id"
)


def _launch_row(row: Sequence[Any]) -> LaunchTokenRow:
    return LaunchTokenRow(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        int(row[3]),
        bool(row[4]),
        float(row[5]),
        str(row[6]),
        row[7],
        bool(row[8]),
        row[9],
    )


def token_record(row: Sequence[Any]) -> TokenRecord:
    return TokenRecord(*row)


def _marks(count: int) -> str:
    return ",".join("?" * count)


class SqlTx:
    """The :class:`~._store.Tx` operations over a backend's three statement runners."""

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def _row(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        raise NotImplementedError

    async def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        raise NotImplementedError

    async def _send(self, sql: str, args: Sequence[Any] = ()) -> None:
        """Run a statement whose result nobody waits for (a backend may send it on without waiting: an error
        still fails the transaction, at its next read or at commit)."""
        await self._run(sql, args)

    async def serialize(self) -> None:
        """From here to the end of the transaction, one transaction at a time across all processes."""

    # -- meta -------------------------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._row("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def put_meta(self, key: str, value: str) -> None:
        await self._send(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def delete_meta(self, key: str) -> None:
        await self._send("DELETE FROM meta WHERE key = ?", (key,))

    # -- signing keys -----------------------------------------------------------------------------------------

    async def signing_keys(self) -> list[KeyRow]:
        rows = await self._rows(
            "SELECT kid, private_key, created_at, retire_after FROM signing_keys ORDER BY created_at"
        )
        return [KeyRow(str(r[0]), str(r[1]), float(r[2]), None if r[3] is None else float(r[3])) for r in rows]

    async def insert_signing_key(self, row: KeyRow) -> None:
        await self._send(
            "INSERT INTO signing_keys (kid, private_key, created_at, retire_after) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kid) DO NOTHING",
            (row.kid, row.private, row.created_at, row.retire_after),
        )

    async def reseal_signing_key(self, kid: str, private: str) -> None:
        await self._send("UPDATE signing_keys SET private_key = ? WHERE kid = ?", (private, kid))

    async def retire_signing_keys(self, retire_after: float) -> int:
        await self.serialize()  # two rotations at once still leave exactly one current key
        return await self._run("UPDATE signing_keys SET retire_after = ? WHERE retire_after IS NULL", (retire_after,))

    # -- apps -------------------------------------------------------------------------------------------------

    async def insert_app(self, row: AppRow) -> None:
        await self._send(
            f"INSERT INTO apps ({_APP_COLUMNS}) VALUES ({_marks(10)})",  # noqa: S608 - fixed column list
            (
                row.app_id,
                row.name,
                row.client_id,
                row.secret_hash,
                row.scopes,
                row.token_ttl,
                row.status,
                row.created_at,
                row.updated_at,
                row.deregistered_at,
            ),
        )

    async def app(self, app_id: str) -> AppRow | None:
        row = await self._row(f"SELECT {_APP_COLUMNS} FROM apps WHERE app_id = ?", (app_id,))  # noqa: S608
        return None if row is None else AppRow(*row)

    async def apps(self) -> list[AppRow]:
        rows = await self._rows(f"SELECT {_APP_COLUMNS} FROM apps ORDER BY created_at, app_id")  # noqa: S608
        return [AppRow(*row) for row in rows]

    async def active_app_by_client(self, client_id: str) -> AppRow | None:
        row = await self._row(
            f"SELECT {_APP_COLUMNS} FROM apps WHERE client_id = ? AND status = 'active'",  # noqa: S608
            (client_id,),
        )
        return None if row is None else AppRow(*row)

    async def update_app(self, app_id: str, *, scopes: str | None, token_ttl: int | None, updated_at: str) -> None:
        if scopes is not None:
            await self._send("UPDATE apps SET scopes = ? WHERE app_id = ?", (scopes, app_id))
        if token_ttl is not None:
            await self._send("UPDATE apps SET token_ttl = ? WHERE app_id = ?", (token_ttl, app_id))
        await self._send("UPDATE apps SET updated_at = ? WHERE app_id = ?", (updated_at, app_id))

    async def deactivate_app(self, app_id: str, when: str) -> None:
        await self._send(
            "UPDATE apps SET status = 'inactive', deregistered_at = ?, updated_at = ? WHERE app_id = ?",
            (when, when, app_id),
        )
        await self._send("UPDATE launch_tokens SET consumed = 1 WHERE app_id = ? AND consumed = 0", (app_id,))

    # -- launch tokens and nonces -----------------------------------------------------------------------------

    async def insert_launch_token(self, row: LaunchTokenRow) -> None:
        await self._send(
            "INSERT INTO launch_tokens (token_hash, agent_name, allowed_scope, max_ttl, single_use, expires_at,"
            " created_by, app_id, task_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.token_hash,
                row.agent_name,
                row.allowed_scope,
                row.max_ttl,
                int(row.single_use),
                row.expires_at,
                row.created_by,
                row.app_id,
                row.task_id,
            ),
        )

    async def launch_token(self, token_hash: str) -> LaunchTokenRow | None:
        row = await self._row(f"SELECT {_LAUNCH_COLUMNS} FROM launch_tokens WHERE token_hash = ?", (token_hash,))  # noqa: S608
        return None if row is None else _launch_row(row)

    async def use_launch_token(self, token_hash: str, now: float) -> LaunchTokenRow | None:
        # One statement: of two registrations racing on a single-use token, the second finds it consumed.
        row = await self._row(
            "UPDATE launch_tokens SET consumed = single_use, uses = uses + 1"  # noqa: S608 - fixed column list
            f" WHERE token_hash = ? AND consumed = 0 AND expires_at > ? RETURNING {_LAUNCH_COLUMNS}",
            (token_hash, now),
        )
        return None if row is None else _launch_row(row)

    async def spend_launch_tokens(
        self, now: float, *, task_id: str | None = None, token_hashes: Sequence[str] = (), app_id: str | None = None
    ) -> int:
        if task_id is not None:
            where, args = "task_id = ?", [task_id]
        elif token_hashes:
            where, args = f"token_hash IN ({_marks(len(token_hashes))})", list(token_hashes)
        else:
            return 0
        if app_id is not None:
            where, args = where + " AND app_id = ?", [*args, app_id]
        return await self._run(
            f"UPDATE launch_tokens SET consumed = 1 WHERE consumed = 0 AND expires_at > ? AND {where}",  # noqa: S608 - fixed clauses
            [now, *args],
        )

    async def insert_nonces(self, nonces: Sequence[str], expires_at: float) -> None:
        if nonces:
            values = ", ".join(["(?, ?)"] * len(nonces))
            args = [item for nonce in nonces for item in (nonce, expires_at)]
            await self._send(f"INSERT INTO nonces (nonce, expires_at) VALUES {values}", args)  # noqa: S608

    async def nonce_expiry(self, nonce: str) -> float | None:
        row = await self._row("SELECT expires_at FROM nonces WHERE nonce = ?", (nonce,))
        return None if row is None else float(row[0])

    async def take_nonce(self, nonce: str, now: float) -> bool:
        row = await self._row("DELETE FROM nonces WHERE nonce = ? AND expires_at > ? RETURNING nonce", (nonce, now))
        return row is not None

    # -- agents and tokens ------------------------------------------------------------------------------------

    async def insert_agent(self, row: AgentRow) -> None:
        await self._send(
            "INSERT INTO agents (agent_id, public_key, orch_id, task_id, scope, app_id, agent_name, registered_at,"
            " registered_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.agent_id,
                row.public_key,
                row.orch_id,
                row.task_id,
                row.scope,
                row.app_id,
                row.agent_name,
                row.registered_at,
                row.registered_epoch,
            ),
        )

    async def agent_exists(self, agent_id: str) -> bool:
        return await self._row("SELECT 1 FROM agents WHERE agent_id = ?", (agent_id,)) is not None

    async def agent_public_key(self, agent_id: str) -> str | None:
        row = await self._row("SELECT public_key FROM agents WHERE agent_id = ?", (agent_id,))
        return None if row is None else str(row[0])

    async def insert_token(self, record: TokenRecord) -> None:
        r = record
        await self._send(
            "INSERT INTO tokens (jti, sub, kind, task_id, orch_id, chain_root, lineage, parent_lineage, renewed_from,"
            " ttl, exp_cap, iat, exp, renew_until, jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.jti,
                r.sub,
                r.kind,
                r.task_id,
                r.orch_id,
                r.chain_root,
                r.lineage,
                r.parent_lineage,
                r.renewed_from,
                r.ttl,
                r.exp_cap,
                r.iat,
                r.exp,
                r.renew_until,
                r.jkt,
            ),
        )
        if r.audience:
            await self._send("INSERT INTO token_audiences (jti, audience) VALUES (?, ?)", (r.jti, r.audience))

    async def token(self, jti: str) -> TokenRecord | None:
        row = await self._row(f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE t.jti = ?", (jti,))  # noqa: S608
        return None if row is None else token_record(row)

    async def audience_of(self, jti: str) -> str | None:
        row = await self._row("SELECT audience FROM token_audiences WHERE jti = ?", (jti,))
        return None if row is None else str(row[0])

    async def live_tokens(self, column: str, target: str, now: int) -> list[TokenRecord]:
        if column not in _MATCH_COLUMNS:
            raise ValueError(f"cannot match tokens on {column!r}")
        await self.serialize()
        rows = await self._rows(
            f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE t.{column} = ? AND t.exp > ?",  # noqa: S608
            (target, now),
        )
        return [token_record(row) for row in rows]

    async def live_tokens_of_app(self, app_id: str, now: int) -> list[TokenRecord]:
        await self.serialize()
        rows = await self._rows(
            f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE (t.sub = ? OR t.sub IN"  # noqa: S608
            " (SELECT agent_id FROM agents WHERE app_id = ?)) AND t.exp > ?",
            (f"app:{app_id}", app_id, now),
        )
        return [token_record(row) for row in rows]

    async def delegated_from(self, lineages: Sequence[str]) -> list[TokenRecord]:
        await self.serialize()
        found: list[TokenRecord] = []
        for start in range(0, len(lineages), 500):  # stays under SQLite's host-parameter limit on every build
            batch = list(lineages[start : start + 500])
            rows = await self._rows(
                f"SELECT {_RECORD_COLUMNS} FROM {_RECORD_FROM} WHERE t.parent_lineage IN ({_marks(len(batch))})",  # noqa: S608
                batch,
            )
            found.extend(token_record(row) for row in rows)
        return found

    # -- revocation rules -------------------------------------------------------------------------------------

    async def add_rule(self, level: str, target: str, revoked_at: str, forget_after: int | None) -> bool:
        await self.serialize()
        changed = await self._run(ADD_RULE, (level, target, revoked_at, forget_after))
        return changed == 1

    async def add_token_rule(
        self,
        jti: str,
        revoked_at: str,
        forget_after: int | None,
        *,
        children_of: str | None = None,
        optimistic: bool = False,
    ) -> tuple[bool, list[TokenRecord]]:
        added = await self.add_rule("token", jti, revoked_at, forget_after)
        children = await self.delegated_from([children_of]) if added and children_of is not None else []
        return added, children

    async def rule_matches(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        await self.serialize()
        return await self._row(_REVOKED, (jti, sub, task_id, chain_root)) is not None

    async def feed(self, after: int, limit: int) -> list[FeedRow]:
        rows = await self._rows(
            "SELECT r.seq, r.level, r.target, r.revoked_at, t.exp FROM revocations r"
            " LEFT JOIN tokens t ON r.level = 'token' AND t.jti = r.target"
            " WHERE r.seq > ? ORDER BY r.seq LIMIT ?",
            (after, limit),
        )
        return [FeedRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), None if r[4] is None else int(r[4])) for r in rows]

    # -- audit ------------------------------------------------------------------------------------------------

    async def append_audit(self, fields: dict[str, Any]) -> None:
        await self.serialize()
        tail = await self._row("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        seq, prev_hash = (int(tail[0]) + 1, str(tail[1])) if tail else (1, GENESIS_HASH)
        ts = now_ns()
        event: dict[str, Any] = {"id": f"evt-{seq:06d}", "timestamp": rfc3339_nano(ts), **fields}
        event["hash"] = event_hash(prev_hash, event)
        event["prev_hash"] = prev_hash
        await self._send(
            f"INSERT INTO audit_events (seq, ts_ns, {_AUDIT_LIST}) VALUES (?, ?, {_marks(len(AUDIT_COLUMNS))})",  # noqa: S608
            (seq, ts, *(event[name] for name in AUDIT_COLUMNS)),
        )

    async def audit_events(self, where: str, args: Sequence[Any], limit: int, offset: int) -> list[dict[str, Any]]:
        rows = await self._rows(
            f"SELECT {_AUDIT_LIST} FROM audit_events{where} ORDER BY seq LIMIT ? OFFSET ?",  # noqa: S608
            [*args, limit, offset],
        )
        return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in rows]

    async def audit_count(self, where: str = "", args: Sequence[Any] = ()) -> int:
        row = await self._row(f"SELECT COUNT(*) FROM audit_events{where}", args)  # noqa: S608
        return int(row[0]) if row else 0

    async def audit_tail(self) -> int:
        row = await self._row("SELECT COALESCE(MAX(seq), 0) FROM audit_events")
        return int(row[0]) if row else 0

    # -- upkeep -----------------------------------------------------------------------------------------------

    async def count_active_agents(self, now: int) -> int:
        row = await self._row(
            "SELECT COUNT(DISTINCT t.sub) FROM tokens t JOIN agents a ON a.agent_id = t.sub WHERE t.exp > ?"
            " AND NOT EXISTS (SELECT 1 FROM revocations r WHERE (r.level = 'token' AND r.target = t.jti)"
            " OR (r.level = 'agent' AND r.target = t.sub) OR (r.level = 'task' AND r.target = t.task_id)"
            " OR (r.level = 'chain' AND r.target = t.chain_root))",
            (now,),
        )
        return int(row[0]) if row else 0

    async def purge(self, kind: str, before: float, limit: int) -> int:
        if kind == "tokens":  # a token's audience binding goes with it
            rows = await self._rows("SELECT jti FROM tokens WHERE exp < ? LIMIT ?", (int(before), limit))
            jtis = [str(row[0]) for row in rows]
            if not jtis:
                return 0
            await self._send(f"DELETE FROM token_audiences WHERE jti IN ({_marks(len(jtis))})", jtis)  # noqa: S608
            return await self._run(f"DELETE FROM tokens WHERE jti IN ({_marks(len(jtis))})", jtis)  # noqa: S608
        sql = _PURGE.get(kind)
        if sql is None:
            raise ValueError(f"{kind!r} is not something housekeeping purges")
        return await self._run(sql, (before, limit))
