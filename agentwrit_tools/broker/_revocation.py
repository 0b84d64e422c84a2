"""Revocation rules, the cascade through delegations, and the revocation feed.

A rule names a level and a target; a token is revoked when any rule matches it:

* ``token`` — its ``jti``;
* ``agent`` — its ``sub`` (also tokens issued to that identity later: the identity is dead);
* ``task``  — its ``task_id``;
* ``chain`` — the first record of its ``delegation_chain`` (the agent that started the chain).

Rules are rows with a strictly increasing ``seq``; that sequence *is* the revocation feed (extension:
``GET /v1/revocations?after=&limit=``), so a resource server that verifies tokens locally can poll it and miss
nothing: rules are never deleted or reordered.

Cascade (extension): every issued token is recorded with its *lineage* (the ``jti`` that started its renewal
line; renewals keep it) and, when delegated, its parent's lineage. Revoking or releasing a live token walks the
lineage tree downwards and adds a ``token`` rule for every live descendant, each with its own audit event — so
what a delegator handed out dies with it, including tokens delegated from the delegator's earlier (renewed)
incarnations. A renewal's own revocation of its predecessor does not cascade: the authority lives on under the
new ``jti``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._audit import AuditLog
from ._metrics import BrokerMetrics
from ._timefmt import rfc3339_nano

__all__ = ["LEVELS", "Revocations", "TokenRow"]

LEVELS = ("token", "agent", "task", "chain")
_MATCH_COLUMN = {"token": "jti", "agent": "sub", "task": "task_id", "chain": "chain_root"}


@dataclass(frozen=True, slots=True)
class TokenRow:
    """What the broker remembers about an issued token (never the token itself)."""

    jti: str
    sub: str
    task_id: str
    orch_id: str
    chain_root: str | None
    lineage: str
    exp: int

    @classmethod
    def from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> TokenRow:
        return cls(*row)


_ROW_COLUMNS = "jti, sub, task_id, orch_id, chain_root, lineage, exp"
_BATCH = 500  # stays under SQLite's host-parameter limit on every build


def chain_root_of(claims: dict[str, Any]) -> str | None:
    """The agent that started a token's delegation chain, or ``None`` for an undelegated token."""
    chain = claims.get("delegation_chain")
    if isinstance(chain, list) and chain and isinstance(chain[0], dict):
        root = chain[0].get("agent")
        return root if isinstance(root, str) else None
    return None


class Revocations:
    """Rule storage and matching on the broker's connection (callers own the transaction)."""

    def __init__(self, conn: sqlite3.Connection, audit: AuditLog, metrics: BrokerMetrics, *, cascade: bool) -> None:
        self._conn = conn
        self._audit = audit
        self._metrics = metrics
        self.cascade = cascade

    # -- matching ---------------------------------------------------------------------------------------------

    def is_revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM revocations WHERE (level = 'token' AND target = ?) OR (level = 'agent' AND target = ?)"
            " OR (level = 'task' AND target = ?) OR (level = 'chain' AND target = ?) LIMIT 1",
            (jti, sub, task_id, chain_root),
        ).fetchone()
        return row is not None

    def claims_revoked(self, claims: dict[str, Any]) -> bool:
        return self.is_revoked(
            str(claims.get("jti", "")),
            str(claims.get("sub", "")),
            str(claims.get("task_id", "")),
            chain_root_of(claims),
        )

    def _row_revoked(self, row: TokenRow) -> bool:
        return self.is_revoked(row.jti, row.sub, row.task_id, row.chain_root)

    # -- writing ----------------------------------------------------------------------------------------------

    def add_rule(self, level: str, target: str) -> bool:
        """Store a rule; ``False`` when the same rule already existed (its ``seq`` is kept)."""
        if level not in LEVELS:
            raise ValueError(f"unknown revocation level {level!r}")
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO revocations (level, target, revoked_at) VALUES (?, ?, ?)",
            (level, target, rfc3339_nano(time.time_ns())),
        )
        return cur.rowcount == 1

    def revoke(self, level: str, target: str) -> tuple[list[TokenRow], list[TokenRow]]:
        """Apply an operator's rule.

        Returns:
            (the live tokens the rule itself revoked, the live tokens revoked by cascade).
        """
        column = _MATCH_COLUMN[level]
        hit = self._live(f"{column} = ?", (target,))  # fixed column name
        self.add_rule(level, target)
        if hit:
            self._metrics.tokens_revoked.labels(level=level).inc(len(hit))
        cascaded = self.cascade_from(row.lineage for row in hit) if self.cascade else []
        return hit, cascaded

    def revoke_app(self, app_id: str) -> tuple[list[TokenRow], list[TokenRow]]:
        """Revoke what a deregistered app holds: its own live tokens and those of the agents it launched.

        Token-level rules (they are forgotten once the tokens expire), plus the cascade to what those tokens
        delegated. Returns (the tokens revoked directly, the ones revoked by cascade).
        """
        hit = self._live(
            "(sub = ? OR sub IN (SELECT agent_id FROM agents WHERE app_id = ?))", (f"app:{app_id}", app_id)
        )
        for row in hit:
            self.add_rule("token", row.jti)
        if hit:
            self._metrics.tokens_revoked.labels(level="token").inc(len(hit))
        cascaded = self.cascade_from(row.lineage for row in hit) if self.cascade else []
        return hit, cascaded

    def _live(self, condition: str, args: tuple[Any, ...]) -> list[TokenRow]:
        """Unexpired, not yet revoked tokens matching ``condition`` (a fixed SQL fragment with placeholders)."""
        rows = self._conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM tokens WHERE {condition} AND exp > ?",  # noqa: S608 - fixed fragments
            (*args, int(time.time())),
        )
        return [row for row in map(TokenRow.from_row, rows) if not self._row_revoked(row)]

    def revoke_token(self, row: TokenRow, *, cascade: bool) -> list[TokenRow]:
        """Revoke one token by ``jti`` (release, renewal); returns the cascade's victims."""
        if self.add_rule("token", row.jti):
            self._metrics.tokens_revoked.labels(level="token").inc()
        return self.cascade_from([row.lineage]) if cascade and self.cascade else []

    def cascade_from(self, lineages: Iterable[str]) -> list[TokenRow]:
        """Revoke every live token delegated (transitively) from the given lineages, auditing each."""
        now = int(time.time())
        seen = set(lineages)
        frontier = list(seen)
        victims: list[TokenRow] = []
        while frontier:
            rows: list[TokenRow] = []
            for start in range(0, len(frontier), _BATCH):
                batch = frontier[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows.extend(
                    TokenRow.from_row(r)
                    for r in self._conn.execute(
                        f"SELECT {_ROW_COLUMNS} FROM tokens WHERE parent_lineage IN ({marks})",  # noqa: S608
                        batch,
                    )
                )
            frontier = []
            for row in rows:
                if row.lineage not in seen:
                    seen.add(row.lineage)
                    frontier.append(row.lineage)
                if row.exp > now and not self._row_revoked(row):
                    self.add_rule("token", row.jti)
                    self._metrics.tokens_revoked.labels(level="token").inc()
                    self._audit.append(
                        "token_revoked",
                        agent_id=row.sub,
                        task_id=row.task_id,
                        orch_id=row.orch_id,
                        detail=f"cascade: jti {row.jti} was delegated from a revoked token",
                        resource=row.jti,
                    )
                    victims.append(row)
        return victims

    # -- reading ----------------------------------------------------------------------------------------------

    def token_row(self, jti: str) -> TokenRow | None:
        r = self._conn.execute(f"SELECT {_ROW_COLUMNS} FROM tokens WHERE jti = ?", (jti,)).fetchone()  # noqa: S608
        return TokenRow.from_row(r) if r else None

    def feed(self, after: int, limit: int) -> dict[str, Any]:
        """One page of the revocation feed, oldest first.

        Extension: a ``token`` entry carries the token's ``exp`` (unix seconds) when the broker issued it, so a
        verifier can forget the entry once the token has expired anyway; ``null`` when the ``jti`` is unknown.
        """
        rows = self._conn.execute(
            "SELECT r.seq, r.level, r.target, r.revoked_at, t.exp FROM revocations r"
            " LEFT JOIN tokens t ON r.level = 'token' AND t.jti = r.target"
            " WHERE r.seq > ? ORDER BY r.seq LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        page = rows[:limit]
        return {
            "revocations": [
                {
                    "seq": r[0],
                    "level": r[1],
                    "target": r[2],
                    "revoked_at": r[3],
                    **({"exp": r[4]} if r[1] == "token" else {}),
                }
                for r in page
            ],
            "next_after": page[-1][0] if page else after,
            "has_more": len(rows) > limit,
        }
