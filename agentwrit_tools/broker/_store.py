"""The broker's storage interface: what a backend must offer, and the records it stores.

Everything a broker replica needs lives in the store — apps, launch tokens, nonces, agents, issued tokens,
revocation rules, the audit chain, signing keys — so any number of replicas over one database behave as one
broker, and a restart loses nothing. Two backends implement it: SQLite (:mod:`._store_sqlite`, the embedded
default, one process) and PostgreSQL (:mod:`._store_pg`, N replicas). Nothing above this module knows which runs;
one conformance suite (``tests/store``) holds both to the same behaviour.

The interface is one method per operation, never SQL in the services:

* :meth:`Store.transaction` — an atomic unit: everything done through its :class:`Tx` commits together or not at
  all. Order-sensitive steps (revocation rules, the audit chain, and any read a revocation depends on) are
  serialised across replicas by the backend, so the audit chain stays one linear chain and the revocation feed
  is in commit order.
* :meth:`Store.reader` — the same operations for reads outside a transaction.
* :meth:`Store.revoked` — the per-request revocation question, answered without a round trip where the backend
  can (PostgreSQL keeps a mirror of the rules, kept fresh within :attr:`BrokerSettings.revocation_max_staleness`).

A backend that cannot reach its database raises :class:`StoreUnavailable`: the HTTP edge answers 503, never a
success that was not stored. Adding an operation (a new kind of record, a new rule) means one method here, its
SQL in :mod:`._sqltx` (shared by both backends) and, when the schema changes, a migration in :mod:`._migrations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "PURGEABLE",
    "AgentRow",
    "AppRow",
    "Contended",
    "FeedRow",
    "KeyRow",
    "LaunchTokenRow",
    "Store",
    "StoreUnavailable",
    "TokenRecord",
    "Tx",
]

PURGEABLE = ("nonces", "launch_tokens", "tokens", "revocations", "agents", "signing_keys")
"""What housekeeping may purge once expired, in this order (never the audit log)."""


class Contended(Exception):
    """An optimistic step's assumption did not hold at commit (see :meth:`Tx.add_token_rule`); nothing was
    stored, and running the transaction again without the optimism does the right thing."""


class StoreUnavailable(Exception):
    """The database cannot be reached (or stopped answering) — a fault of the moment, answered with 503.

    The message is fixed and safe to show: it never carries a URL, a password or the driver's text.
    """

    def __init__(self, message: str = "the broker's database is unavailable") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the broker remembers about an issued token (never the token itself).

    ``lineage`` is the ``jti`` that started the token's renewal line (renewals keep it); ``parent_lineage`` the
    delegator's lineage for a delegated token; ``renew_until`` the absolute end of the renewal line (``None``
    for rows written before lines had one); ``audience`` the resource the token is bound to and ``jkt`` the
    thumbprint of the key it is bound to (extensions).
    """

    jti: str
    sub: str
    task_id: str
    orch_id: str
    chain_root: str | None
    lineage: str
    exp: int
    kind: str = "agent"
    parent_lineage: str | None = None
    renewed_from: str | None = None
    ttl: int = 0
    exp_cap: int | None = None
    iat: int = 0
    renew_until: int | None = None
    audience: str | None = None
    jkt: str | None = None


@dataclass(frozen=True, slots=True)
class AppRow:
    app_id: str
    name: str
    client_id: str
    secret_hash: str
    scopes: str  # JSON list
    token_ttl: int
    status: str
    created_at: str
    updated_at: str
    deregistered_at: str | None = None


@dataclass(frozen=True, slots=True)
class LaunchTokenRow:
    token_hash: str
    agent_name: str
    allowed_scope: str  # JSON list
    max_ttl: int
    single_use: bool
    expires_at: float
    created_by: str
    app_id: str | None
    consumed: bool = False
    task_id: str | None = None  # extension: the task it is bound to (see _launch_tasks)


@dataclass(frozen=True, slots=True)
class AgentRow:
    agent_id: str
    public_key: str
    orch_id: str
    task_id: str
    scope: str  # JSON list
    app_id: str | None
    agent_name: str
    registered_at: str
    registered_epoch: int


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A signing key as stored: ``private`` sealed by the keyring (or base64 without one).

    ``retire_after`` (unix seconds) is ``None`` for the current key; a rotated-out key is published until then
    (every token it signed has expired by then) and verifies nothing after.
    """

    kid: str
    private: str
    created_at: float
    retire_after: float | None = None


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One revocation rule as the feed shows it; ``exp`` is the revoked token's expiry for ``token`` rules."""

    seq: int
    level: str
    target: str
    revoked_at: str
    exp: int | None


class Tx(Protocol):
    """The operations on stored state; through :meth:`Store.transaction` they are one atomic unit."""

    async def serialize(self) -> None:
        """From here to the end of the transaction, one transaction at a time across every process sharing the
        database (the operations that need it call it themselves)."""
        ...

    # -- meta (the admin secret's hash) ---------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None: ...
    async def put_meta(self, key: str, value: str) -> None: ...
    async def delete_meta(self, key: str) -> None: ...

    # -- signing keys ---------------------------------------------------------------------------------------
    async def signing_keys(self) -> list[KeyRow]:
        """Every stored key, oldest first."""
        ...

    async def insert_signing_key(self, row: KeyRow) -> None: ...
    async def reseal_signing_key(self, kid: str, private: str) -> None: ...
    async def retire_signing_keys(self, retire_after: float) -> int:
        """Set ``retire_after`` on every current key (the rotation); returns how many."""
        ...

    # -- apps -----------------------------------------------------------------------------------------------
    async def insert_app(self, row: AppRow) -> None: ...
    async def app(self, app_id: str) -> AppRow | None: ...
    async def apps(self) -> list[AppRow]: ...
    async def active_app_by_client(self, client_id: str) -> AppRow | None: ...
    async def update_app(self, app_id: str, *, scopes: str | None, token_ttl: int | None, updated_at: str) -> None: ...
    async def deactivate_app(self, app_id: str, when: str) -> None:
        """Mark the app inactive and spend its unused launch tokens."""
        ...

    # -- launch tokens and nonces ---------------------------------------------------------------------------
    async def insert_launch_token(self, row: LaunchTokenRow) -> None: ...
    async def launch_token(self, token_hash: str) -> LaunchTokenRow | None: ...
    async def use_launch_token(self, token_hash: str, now: float) -> LaunchTokenRow | None:
        """Count one use (a single-use token is consumed) and return the token as it was; ``None`` when it is
        unknown, expired or spent — under concurrency exactly one of several callers gets it for a single-use
        token (the others wait for that one's transaction, and find it spent, or usable again if it rolled
        back)."""
        ...

    async def spend_launch_tokens(
        self, now: float, *, task_id: str | None = None, token_hashes: Sequence[str] = (), app_id: str | None = None
    ) -> int:
        """Spend the live launch tokens bound to ``task_id``, or exactly ``token_hashes`` (only ``app_id``'s when
        given); returns how many were live and are spent now."""
        ...

    async def insert_nonces(self, nonces: Sequence[str], expires_at: float) -> None:
        """Store nonces (one, or a batch fetched ahead) in one statement."""
        ...

    async def nonce_expiry(self, nonce: str) -> float | None: ...
    async def take_nonce(self, nonce: str, now: float) -> bool:
        """Consume a live nonce; ``False`` when unknown, expired or already taken (exactly one caller wins)."""
        ...

    # -- agents and tokens ----------------------------------------------------------------------------------
    async def insert_agent(self, row: AgentRow) -> None: ...
    async def agent_exists(self, agent_id: str) -> bool: ...
    async def agent_public_key(self, agent_id: str) -> str | None:
        """A registered agent's public key (standard base64, as registered); ``None`` for an unknown agent."""
        ...

    async def insert_token(self, record: TokenRecord) -> None: ...
    async def token(self, jti: str) -> TokenRecord | None: ...
    async def audience_of(self, jti: str) -> str | None: ...
    async def live_tokens(self, column: str, target: str, now: int) -> list[TokenRecord]:
        """Unexpired tokens whose ``column`` (``jti``, ``sub``, ``task_id`` or ``chain_root``) is ``target``."""
        ...

    async def live_tokens_of_app(self, app_id: str, now: int) -> list[TokenRecord]:
        """Unexpired tokens of an app and of the agents registered with its launch tokens."""
        ...

    async def delegated_from(self, lineages: Sequence[str]) -> list[TokenRecord]:
        """Tokens whose ``parent_lineage`` is one of ``lineages``."""
        ...

    # -- revocation rules -----------------------------------------------------------------------------------
    async def add_rule(self, level: str, target: str, revoked_at: str, forget_after: int | None) -> bool:
        """Store a rule; ``False`` when the same rule already existed. ``forget_after`` (unix seconds): when
        housekeeping may drop it (a ``token`` rule once the token has expired); ``None`` keeps it forever."""
        ...

    async def add_token_rule(
        self,
        jti: str,
        revoked_at: str,
        forget_after: int | None,
        *,
        children_of: str | None = None,
        optimistic: bool = False,
    ) -> tuple[bool, list[TokenRecord]]:
        """A ``token`` rule for ``jti`` (see :meth:`add_rule`) and, with ``children_of``, the tokens delegated from
        that lineage, read after the rule — the release path's two steps, in one round trip where the backend
        can (the ordering lock is held meanwhile).

        ``optimistic``: the backend may answer "added, no children" at once and check both at commit, where it
        raises :class:`Contended` if either is false (the caller then runs the transaction again without it):
        the common release then holds the ordering lock for the database's own work only.
        """
        ...

    async def rule_matches(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        """Whether a stored rule revokes a token with these identifiers (the authoritative answer)."""
        ...

    async def feed(self, after: int, limit: int) -> list[FeedRow]:
        """Rules with ``seq > after``, in ``seq`` (= commit) order, at most ``limit``."""
        ...

    # -- audit ----------------------------------------------------------------------------------------------
    async def append_audit(self, fields: dict[str, Any]) -> None:
        """Chain and store one event with the transaction (``fields``: the API fields but ``id``, ``timestamp``,
        ``hash`` and ``prev_hash``, which the store sets; a backend may chain them only at commit)."""
        ...

    async def audit_events(self, where: str, args: Sequence[Any], limit: int, offset: int) -> list[dict[str, Any]]:
        """Events matching ``where`` (from :meth:`._audit.AuditFilter.where`), oldest first."""
        ...

    async def audit_count(self, where: str = "", args: Sequence[Any] = ()) -> int: ...
    async def audit_tail(self) -> int:
        """The ``seq`` of the newest committed event (0 for an empty log)."""
        ...

    # -- upkeep ---------------------------------------------------------------------------------------------
    async def count_active_agents(self, now: int) -> int: ...
    async def purge(self, kind: str, before: float, limit: int) -> int:
        """Delete at most ``limit`` rows of ``kind`` (one of :data:`PURGEABLE`) that expired before ``before``
        (unix seconds); returns how many. Never touches the audit log."""
        ...


class Store(Protocol):
    """A backend: where the state lives and how replicas share it."""

    kind: str  # "sqlite" or "postgresql"

    async def open(self) -> None:
        """Connect and bring the schema up to date (:mod:`._migrations`).

        Raises:
            ConfigurationError: a wrong URL or file, an unreachable database (one line, no secret).
        """
        ...

    async def close(self) -> None: ...
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...
    def reader(self) -> AbstractAsyncContextManager[Tx]: ...
    def revoked(self, jti: str, sub: str, task_id: str, chain_root: str | None) -> bool:
        """Whether a token with these identifiers is revoked, answered locally where the backend can.

        Raises:
            StoreUnavailable: the local answer may be staler than the promised bound.
        """
        ...

    async def ping(self) -> bool: ...
    async def schema_version(self) -> int: ...
