"""The broker's shared machinery: storage, key, audit, revocations, metrics, and token minting and checking.

:class:`BrokerCore` is what every service function receives. It is synchronous on purpose: the HTTP layer calls
it from the event-loop thread that owns the SQLite connection, so one request's work is never interleaved with
another's and no locks are needed. The only slow step (scrypt for the admin secret) is split out so the HTTP
layer can run it in a worker thread.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, ScopeError
from ..scopes import covers_all
from . import _jwt
from ._audience import ResourceAudiences
from ._audit import AuditLog
from ._checkpoint import SAFETY_PAGES, Checkpointer
from ._db import connect, transaction
from ._denials import DenialWindows, request_peer
from ._files import check_private, create_private, db_files, tighten
from ._keyring import Keyring
from ._keys import SigningKey, load_or_create_key
from ._launch_tasks import LaunchTokenTasks
from ._metrics import BrokerMetrics
from ._problems import Problem, bad_request, insufficient_scope, unauthorized
from ._ratelimit import RateLimiter
from ._revocation import Revocations, chain_root_of
from ._secrets import hash_admin_secret, random_hex, verify_admin_secret
from ._settings import BrokerSettings
from ._verified import VerifiedTokens

__all__ = ["BrokerCore", "Issued", "principal_kind"]

logger = logging.getLogger("agentwrit_tools.broker")

_ADMIN_SECRET_KEY = "admin_secret_hash"  # noqa: S105 - a row name, not a secret


def _no_record(
    event_type: str, *, claims: dict[str, Any] | None = None, anonymous: bool | None = None, **fields: Any
) -> None:
    """Stand-in for :meth:`BrokerCore.record_denial` when the caller audits the refusal itself."""


def principal_kind(claims: dict[str, Any]) -> str:
    """``admin``, ``app`` or ``agent``: who a verified token speaks for, from its ``sub`` (never from its scopes,
    which a launch token may set to anything)."""
    sub = str(claims.get("sub", ""))
    if sub == "admin":
        return "admin"
    return "app" if sub.startswith("app:") else "agent"


@dataclass(frozen=True, slots=True)
class Issued:
    """A freshly signed token, its claims and its lifetime in seconds."""

    token: str
    claims: dict[str, Any]
    expires_in: int


class BrokerCore:
    """State and primitives shared by every endpoint.

    Build it with :meth:`open` in the thread that will use it (SQLite connections stay in their thread).
    """

    def __init__(self, settings: BrokerSettings, conn: sqlite3.Connection, key: SigningKey) -> None:
        self.settings = settings
        self.conn = conn
        self.key = key
        self.started = time.monotonic()
        self.challenges_issued = 0
        self.audit = AuditLog(conn)
        self.denials = DenialWindows(settings.audit_failure_window)
        self.metrics = BrokerMetrics()
        self.verified = VerifiedTokens()
        self.audiences = ResourceAudiences(conn)  # extension: resource-bound tokens
        self.launch_tasks = LaunchTokenTasks(conn)  # extension: task-bound, revocable launch tokens
        self._checkpointer: Checkpointer | None = None
        self.revocations = Revocations(conn, self.audit, self.metrics, cascade=settings.extensions)
        self.admin_limiter = RateLimiter(settings.admin_auth_rate, settings.admin_auth_burst)
        self.app_limiter = RateLimiter(settings.app_auth_rate, settings.app_auth_burst)
        self.metrics.track_active_agents(self.count_active_agents)

    @classmethod
    def open(cls, settings: BrokerSettings) -> BrokerCore:
        """Check the secret files' permissions, open the database, load or create the key, install the admin secret.

        Raises:
            ConfigurationError: no admin secret configured and none stored; unusable key file; a database or key
                file other users can reach (without ``fix_permissions``); a keyring secret that does not open the
                stored key, or a sealed key and no keyring secret.
            sqlite3.Error: the database cannot be opened.
        """
        keyring = Keyring(settings.keyring_secret) if settings.keyring_secret is not None else None
        secret_files = [] if settings.signing_key_path is None else [settings.signing_key_path]
        if settings.db_path is not None:
            secret_files += db_files(settings.db_path)
        check_private(secret_files, fix=settings.fix_permissions)
        if settings.db_path is not None:
            create_private(settings.db_path)  # 0600 before SQLite opens it: its -wal and -shm follow its mode
        conn = connect(settings.db_path)
        try:
            tighten(secret_files)
            with transaction(conn):
                key = load_or_create_key(conn, settings.signing_key_path, keyring)
            core = cls(settings, conn, key)
            core._install_admin_secret()
        except BaseException:
            conn.close()
            raise
        if settings.db_path is not None:  # checkpoints off the request path (see _checkpoint)
            conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_PAGES}")
            core._checkpointer = Checkpointer(settings.db_path).start()
        return core

    def close(self) -> None:
        try:
            self.flush_denials(everything=True)  # what the open windows counted is not lost on shutdown
        except sqlite3.Error:
            logger.warning("could not write the audit summary of the last refused requests")
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        self.conn.close()

    def tx(self) -> Any:
        """A transaction on the broker's connection (context manager)."""
        return transaction(self.conn)

    # -- admin secret -----------------------------------------------------------------------------------------

    def _install_admin_secret(self) -> None:
        configured = self.settings.admin_secret
        if configured is None:
            if self.stored_admin_hash() is None:
                raise ConfigurationError("no admin secret configured and none stored in the database")
            return
        record = hash_admin_secret(configured)
        with self.tx():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_ADMIN_SECRET_KEY, record),
            )

    def stored_admin_hash(self) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (_ADMIN_SECRET_KEY,)).fetchone()
        return str(row[0]) if row else None

    @staticmethod
    def check_admin_secret(candidate: str, stored: str | None) -> bool:
        """Slow (scrypt): call it from a worker thread. Never touches the database."""
        return stored is not None and verify_admin_secret(candidate, stored)

    # -- tokens -----------------------------------------------------------------------------------------------

    def mint(
        self,
        *,
        sub: str,
        scope: list[str],
        ttl: int,
        kind: str,
        task_id: str = "",
        orch_id: str = "",
        sid: str | None = None,
        chain: list[dict[str, Any]] | None = None,
        chain_hash: str | None = None,
        lineage: str | None = None,
        parent_lineage: str | None = None,
        renewed_from: str | None = None,
        exp_cap: int | None = None,
        renew_until: int | None = None,
        audience: str | None = None,
    ) -> Issued:
        """Sign a token and remember it (call inside a transaction).

        ``ttl`` is capped by the global ``max_ttl``, and ``exp`` by ``exp_cap`` (a delegator's expiry) and by
        ``renew_until``: the absolute end of the token's renewal line, fixed at first issue (``None``: this is the
        first issue, so now + the session lifetime of ``kind``) and carried over by every renewal.
        ``audience`` (extension) binds the token to one resource: its ``aud`` is exactly ``[audience]``.

        Raises:
            Problem: 400 when the token would be longer than the limit every verifier enforces.
        """
        now = int(time.time())
        ttl = max(1, min(ttl, self.settings.max_ttl))
        if renew_until is None:
            renew_until = self.session_end(kind, now)
        exp = min(now + ttl, renew_until)
        if exp_cap is not None:
            exp = min(exp, exp_cap)
        jti = random_hex(16)
        claims: dict[str, Any] = {"iss": self.settings.issuer, "sub": sub}
        aud = [audience] if audience else self.settings.audience_list
        if aud:
            claims["aud"] = aud
        claims.update(exp=exp, nbf=now, iat=now, jti=jti, scope=list(scope), task_id=task_id, orch_id=orch_id)
        if sid:
            claims["sid"] = sid
        if chain:
            claims["delegation_chain"] = chain
            claims["chain_hash"] = chain_hash
        token = _jwt.encode(claims, self.key)
        if len(token) > _jwt.MAX_TOKEN_LENGTH:
            # Every verifier (ours on both sides) refuses a longer token: issuing it would hand out a dud. The
            # caller's transaction rolls back, so nothing (nonce, launch token) is consumed.
            raise bad_request(
                f"the token would be longer than {_jwt.MAX_TOKEN_LENGTH} bytes",
                hint="ask for fewer or shorter scopes",
            )
        self.verified.add(token, claims)  # signed here a moment ago: presenting it needs no signature check
        self.conn.execute(
            "INSERT INTO tokens (jti, sub, kind, task_id, orch_id, chain_root, lineage, parent_lineage, renewed_from,"
            " ttl, exp_cap, iat, exp, renew_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                jti,
                sub,
                kind,
                task_id,
                orch_id,
                chain_root_of(claims),
                lineage or jti,
                parent_lineage,
                renewed_from,
                ttl,
                exp_cap,
                now,
                exp,
                renew_until,
            ),
        )
        if audience:
            self.audiences.record(jti, audience)
        self.metrics.token_issued(scope)
        return Issued(token, claims, exp - now)

    def session_end(self, kind: str, first_issued: int) -> int:
        """The absolute end of a renewal line of ``kind`` first issued at ``first_issued`` (unix seconds)."""
        settings = self.settings
        return first_issued + (settings.admin_session_lifetime if kind == "admin" else settings.session_lifetime)

    def verify(self, token: object) -> dict[str, Any]:
        """Signature, header and claims; not revocation.

        A token this process signed, or verified before, is looked up instead of checked again (see
        :mod:`._verified`); its ``exp``/``nbf`` are still checked against the clock on every use.

        Raises:
            _jwt.TokenInvalid: anything wrong.
        """
        now = time.time()
        known = self.verified.get(token) if isinstance(token, str) else None
        if known is not None:
            _jwt.check_lifetime(known, now)
            return known
        try:
            claims = _jwt.verify(
                token,
                self.key,
                now=now,
                issuer=self.settings.issuer,
                audience=self.settings.audience_list,
                max_ttl=self.settings.max_ttl,
            )
        except _jwt.TokenInvalid:
            bound = self.audiences.expected(token) if isinstance(token, str) else None
            if bound is None:  # not a resource-bound token of ours (extension): the refusal stands
                raise
            claims = _jwt.verify(
                token, self.key, now=now, issuer=self.settings.issuer, audience=bound, max_ttl=self.settings.max_ttl
            )
        if isinstance(token, str):  # always, once verify() accepted it
            self.verified.add(token, claims)
        return claims

    def live_claims(self, token: object) -> dict[str, Any] | None:
        """Claims of a valid, unrevoked token, or ``None`` (the validate endpoint's single question)."""
        try:
            claims = self.verify(token)
        except _jwt.TokenInvalid:
            return None
        return None if self.revocations.claims_revoked(claims) else claims

    def authenticate(
        self,
        authorization: str | None,
        *,
        required_scope: str | None,
        path: str,
        audit: bool = True,
        scope_event: str = "scope_violation",
        principals: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """The contract's Bearer rules: 401 for missing/bad tokens, 403 for revoked or insufficient ones.

        Each refusal of a presented token is audited (never the token itself) unless ``audit`` is off, for
        callers that record their own, more specific event; ``scope_event`` names the event recorded when a
        valid token lacks ``required_scope``. ``principals`` limits the endpoint to those kinds of token
        (``admin``, ``app``, ``agent``: see :func:`principal_kind`), whatever scopes they carry.
        """
        record = self.record_denial if audit else _no_record
        if not authorization:
            raise unauthorized("missing Authorization header")
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise unauthorized("the Authorization header must use the Bearer scheme")
        try:
            claims = self.verify(credential)
        except _jwt.TokenInvalid as exc:
            logger.debug("bearer token refused on %s: %s", path, exc)
            record("token_auth_failed", detail="token verification failed", resource=path)
            raise unauthorized() from None
        if self.revocations.claims_revoked(claims):
            # A revoked token is no credential: its replays are aggregated like a forged token's.
            record(
                "token_revoked_access",
                claims=claims,
                anonymous=True,
                detail="a revoked token was presented",
                resource=path,
            )
            raise insufficient_scope("token has been revoked")
        if required_scope is not None and not self._holds(claims, required_scope):
            record(scope_event, claims=claims, detail=f"endpoint requires {required_scope}", resource=path)
            raise insufficient_scope(f"this endpoint requires the scope {required_scope}")
        if principals is not None and principal_kind(claims) not in principals:
            wanted = " or ".join(principals)
            record(scope_event, claims=claims, detail=f"endpoint is for {wanted} tokens", resource=path)
            raise insufficient_scope(f"this endpoint is for {wanted} tokens")
        return claims

    @staticmethod
    def _holds(claims: dict[str, Any], required: str) -> bool:
        try:
            return covers_all(claims["scope"], [required])
        except ScopeError:
            return False

    # -- audit helpers ----------------------------------------------------------------------------------------

    def record_denial(
        self,
        event_type: str,
        *,
        claims: dict[str, Any] | None = None,
        anonymous: bool | None = None,
        **fields: Any,
    ) -> None:
        """Audit a refusal in its own transaction (the refused request itself changes nothing).

        ``anonymous``: the requester proved nothing — no valid, live credential (default: no ``claims``). Such
        refusals are aggregated per source and window (see :mod:`._denials`) so they cannot flood the log.
        """
        if claims is not None:
            fields.setdefault("agent_id", str(claims.get("sub", "")))
            fields.setdefault("task_id", str(claims.get("task_id", "")))
            fields.setdefault("orch_id", str(claims.get("orch_id", "")))
        self.flush_denials()
        if (claims is None if anonymous is None else anonymous) and not self.denials.admit(
            request_peer.get(), event_type
        ):
            return
        with self.tx():
            self.audit.append(event_type, outcome="denied", **fields)

    def flush_denials(self, *, everything: bool = False) -> None:
        """Write the summary of every aggregation window that is over (all of them with ``everything``)."""
        closed = self.denials.close(everything=everything)
        if not closed:
            return
        with self.tx():
            for win in closed:
                self.audit.append(win.event_type, outcome="denied", detail=win.summary())

    def deny(
        self, problem: Problem, event_type: str, *, claims: dict[str, Any] | None = None, **fields: Any
    ) -> Problem:
        """Audit a refusal and hand back the problem to raise: ``raise core.deny(problem, "event", ...)``."""
        self.record_denial(event_type, claims=claims, **fields)  # ``anonymous``, when given, is in ``fields``
        return problem

    # -- health -----------------------------------------------------------------------------------------------

    def db_connected(self) -> bool:
        try:
            self.conn.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def count_active_agents(self) -> int:
        """Registered agents holding at least one live, unrevoked token."""
        now = int(time.time())
        row = self.conn.execute(
            "SELECT COUNT(DISTINCT t.sub) FROM tokens t JOIN agents a ON a.agent_id = t.sub WHERE t.exp > ?"
            " AND NOT EXISTS (SELECT 1 FROM revocations r WHERE (r.level = 'token' AND r.target = t.jti)"
            " OR (r.level = 'agent' AND r.target = t.sub) OR (r.level = 'task' AND r.target = t.task_id)"
            " OR (r.level = 'chain' AND r.target = t.chain_root))",
            (now,),
        ).fetchone()
        return int(row[0])

    def uptime(self) -> int:
        return int(time.monotonic() - self.started)
