"""Revocation rules, the cascade through delegations, and the revocation feed.

A rule names a level and a target; a token is revoked when any rule matches it:

* ``token`` — its ``jti``;
* ``agent`` — its ``sub`` (also tokens issued to that identity later: the identity is dead);
* ``task``  — its ``task_id``;
* ``chain`` — the first record of its ``delegation_chain`` (the agent that started the chain).

Rules are rows with a strictly increasing ``seq``, assigned in commit order across every replica (the store
serialises rule writes); that sequence *is* the revocation feed (extension: ``GET /v1/revocations?after=&limit=``),
so a resource server that verifies tokens locally can poll it and miss nothing: rules are never reordered, and
the only ones housekeeping deletes are ``token`` rules of tokens that have expired anyway.

Cascade (extension): every issued token is recorded with its *lineage* (the ``jti`` that started its renewal
line; renewals keep it) and, when delegated, its parent's lineage. Revoking or releasing a live token walks the
lineage tree downwards and adds a ``token`` rule for every live descendant, each with its own audit event — so
what a delegator handed out dies with it, including tokens delegated from the delegator's earlier (renewed)
incarnations. A renewal's own revocation of its predecessor does not cascade: the authority lives on under the
new ``jti``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from . import _audit
from ._metrics import BrokerMetrics
from ._store import Store, TokenRecord, Tx
from ._timefmt import rfc3339_nano

__all__ = ["LEVELS", "Revocations", "TokenRow", "chain_root_of"]

LEVELS = ("token", "agent", "task", "chain")
_MATCH_COLUMN = {"token": "jti", "agent": "sub", "task": "task_id", "chain": "chain_root"}

TokenRow = TokenRecord  # what revocation works on: the stored record of an issued token


def chain_root_of(claims: dict[str, Any]) -> str | None:
    """The agent that started a token's delegation chain, or ``None`` for an undelegated token."""
    chain = claims.get("delegation_chain")
    if isinstance(chain, list) and chain and isinstance(chain[0], dict):
        root = chain[0].get("agent")
        return root if isinstance(root, str) else None
    return None


class Revocations:
    """Rule writing and matching over the store (writers pass the transaction they own).

    Args:
        max_ttl: how long a ``token`` rule for a ``jti`` the broker never issued is remembered (no token with it
            can be alive longer).
    """

    def __init__(self, store: Store, metrics: BrokerMetrics, *, cascade: bool, max_ttl: int) -> None:
        self._store = store
        self._metrics = metrics
        self.cascade = cascade
        self._max_ttl = max_ttl

    # -- matching ---------------------------------------------------------------------------------------------

    def is_revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        """The per-request answer (local where the store can; see :meth:`._store.Store.revoked`)."""
        return self._store.revoked(jti, sub, task_id, chain_root)

    def claims_revoked(self, claims: dict[str, Any]) -> bool:
        return self.is_revoked(*_identifiers(claims))

    @staticmethod
    async def claims_revoked_in(tx: Tx, claims: dict[str, Any]) -> bool:
        """The authoritative answer inside a transaction: what a write deriving authority from a token checks,
        so a token revoked on another replica a moment ago cannot renew or delegate."""
        return await tx.rule_matches(*_identifiers(claims))

    # -- writing ----------------------------------------------------------------------------------------------

    async def add_rule(self, tx: Tx, level: str, target: str, *, exp: int | None = None) -> bool:
        """Store a rule; ``False`` when the same rule already existed (its ``seq`` is kept).

        ``exp``: the revoked token's expiry, after which its ``token`` rule may be forgotten.
        """
        if level not in LEVELS:
            raise ValueError(f"unknown revocation level {level!r}")
        forget_after = None
        if level == "token":
            forget_after = exp if exp is not None else int(time.time()) + self._max_ttl
        return await tx.add_rule(level, target, rfc3339_nano(time.time_ns()), forget_after)

    async def revoke(self, tx: Tx, level: str, target: str) -> tuple[list[TokenRow], list[TokenRow]]:
        """Apply an operator's rule.

        Returns:
            (the live tokens the rule itself revoked, the live tokens revoked by cascade).
        """
        hit = await self._live(tx, await tx.live_tokens(_MATCH_COLUMN[level], target, int(time.time())))
        exp = hit[0].exp if level == "token" and hit else None
        await self.add_rule(tx, level, target, exp=exp)
        if hit:
            self._metrics.tokens_revoked.labels(level=level).inc(len(hit))
        cascaded = await self.cascade_from(tx, (row.lineage for row in hit)) if self.cascade else []
        return hit, cascaded

    async def revoke_app(self, tx: Tx, app_id: str) -> tuple[list[TokenRow], list[TokenRow]]:
        """Revoke what a deregistered app holds: its own live tokens and those of the agents it launched.

        Token-level rules (they are forgotten once the tokens expire), plus the cascade to what those tokens
        delegated. Returns (the tokens revoked directly, the ones revoked by cascade).
        """
        hit = await self._live(tx, await tx.live_tokens_of_app(app_id, int(time.time())))
        for row in hit:
            await self.add_rule(tx, "token", row.jti, exp=row.exp)
        if hit:
            self._metrics.tokens_revoked.labels(level="token").inc(len(hit))
        cascaded = await self.cascade_from(tx, (row.lineage for row in hit)) if self.cascade else []
        return hit, cascaded

    @staticmethod
    async def _live(tx: Tx, rows: list[TokenRow]) -> list[TokenRow]:
        """The rows not yet revoked (the caller already kept only unexpired ones)."""
        return [row for row in rows if not await tx.rule_matches(row.jti, row.sub, row.task_id, row.chain_root)]

    async def revoke_token(
        self, tx: Tx, row: TokenRow, *, cascade: bool, optimistic: bool = False
    ) -> tuple[bool, list[TokenRow]]:
        """Revoke one token by ``jti`` (release, renewal).

        ``optimistic``: see :meth:`._store.Tx.add_token_rule` (the transaction may fail with ``Contended``).

        Returns:
            (whether this call added the rule — ``False``: it was already revoked, the cascade's victims).
        """
        walk = cascade and self.cascade
        added, children = await tx.add_token_rule(
            row.jti,
            rfc3339_nano(time.time_ns()),
            row.exp,
            children_of=row.lineage if walk else None,
            optimistic=optimistic,
        )
        if not added:
            return False, []
        self._metrics.tokens_revoked.labels(level="token").inc()
        return True, await self.cascade_from(tx, [row.lineage], first=children) if walk else []

    async def cascade_from(
        self, tx: Tx, lineages: Iterable[str], *, first: list[TokenRow] | None = None
    ) -> list[TokenRow]:
        """Revoke every live token delegated (transitively) from the given lineages, auditing each.

        ``first``: the tokens delegated from ``lineages``, when the caller already read them.
        """
        now = int(time.time())
        seen = set(lineages)
        frontier = list(seen)
        victims: list[TokenRow] = []
        while frontier:
            rows = first if first is not None else await tx.delegated_from(frontier)
            first = None
            frontier = []
            for row in rows:
                if row.lineage not in seen:
                    seen.add(row.lineage)
                    frontier.append(row.lineage)
                if row.exp > now and not await tx.rule_matches(row.jti, row.sub, row.task_id, row.chain_root):
                    await self.add_rule(tx, "token", row.jti, exp=row.exp)
                    self._metrics.tokens_revoked.labels(level="token").inc()
                    await _audit.append(
                        tx,
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

    async def token_row(self, jti: str) -> TokenRow | None:
        async with self._store.reader() as tx:
            return await tx.token(jti)

    async def feed(self, after: int, limit: int) -> dict[str, Any]:
        """One page of the revocation feed, oldest first.

        Extension: a ``token`` entry carries the token's ``exp`` (unix seconds) when the broker issued it, so a
        verifier can forget the entry once the token has expired anyway; ``null`` when the ``jti`` is unknown.
        """
        async with self._store.reader() as tx:
            rows = await tx.feed(after, limit + 1)
        page = rows[:limit]
        return {
            "revocations": [
                {
                    "seq": r.seq,
                    "level": r.level,
                    "target": r.target,
                    "revoked_at": r.revoked_at,
                    **({"exp": r.exp} if r.level == "token" else {}),
                }
                for r in page
            ],
            "next_after": page[-1].seq if page else after,
            "has_more": len(rows) > limit,
        }


def _identifiers(claims: dict[str, Any]) -> tuple[str, str, str, str | None]:
    return (
        str(claims.get("jti", "")),
        str(claims.get("sub", "")),
        str(claims.get("task_id", "")),
        chain_root_of(claims),
    )
