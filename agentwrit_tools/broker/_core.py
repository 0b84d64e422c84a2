"""The broker's shared machinery: storage, keys, audit, revocations, metrics, and token minting and checking.

:class:`BrokerCore` is what every service function receives. It runs on the event loop that serves requests; its
state lives in a :class:`~._store.Store` (SQLite on the loop's thread, or PostgreSQL through a pool), and what it
keeps in memory is per replica and safe to lose: caches (verified tokens, the key set), rate limiters, the open
denial windows. The only slow step (scrypt for the admin secret) is split out so the HTTP layer can run it in a
worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, ScopeError
from ..scopes import covers_all
from . import _audit, _jwt
from ._audience import expected_audience
from ._audit_counts import AuditCounts
from ._denials import DenialWindows, request_peer
from ._files import check_private
from ._keyring import Keyring
from ._keys import SigningKey, key_from_file
from ._keyset import KeySet, LiveKeys, load_keys, require_keyring
from ._metrics import BrokerMetrics
from ._problems import Problem, bad_request, insufficient_scope, unauthorized
from ._ratelimit import RateLimiter
from ._revocation import Revocations, TokenRow, chain_root_of
from ._secrets import hash_admin_secret, random_hex, verify_admin_secret
from ._settings import BrokerSettings
from ._store import Store, StoreUnavailable, Tx
from ._verified import VerifiedTokens

__all__ = ["BrokerCore", "Issued", "principal_kind"]

logger = logging.getLogger("agentwrit_tools.broker")

_ADMIN_SECRET_KEY = "admin_secret_hash"  # noqa: S105 - a row name, not a secret


async def _no_record(
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
    """State and primitives shared by every endpoint. Build it with :meth:`open` on the loop that will serve."""

    def __init__(self, settings: BrokerSettings, store: Store, keys: KeySet, keyring: Keyring | None = None) -> None:
        self.settings = settings
        self.store = store
        self.live_keys = LiveKeys(keys, store, keyring)
        self.started = time.monotonic()
        self.challenges_issued = 0
        self.denials = DenialWindows(settings.audit_failure_window)
        self.metrics = BrokerMetrics()
        self.verified = VerifiedTokens()
        self.audit_counts = AuditCounts()  # audit query totals kept as the log grows (see _audit_counts)
        self.revocations = Revocations(store, self.metrics, cascade=settings.extensions, max_ttl=settings.max_ttl)
        self.admin_limiter = RateLimiter(settings.admin_auth_rate, settings.admin_auth_burst)
        self.app_limiter = RateLimiter(settings.app_auth_rate, settings.app_auth_burst)
        self._background: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, settings: BrokerSettings) -> BrokerCore:
        """Check the secret files, open (and migrate) the store, load or create the keys, install the admin secret.

        Raises:
            ConfigurationError: no admin secret configured and none stored; unusable key file; a database or key
                file other users can reach (without ``fix_permissions``); a keyring secret that does not open the
                stored keys, or sealed keys and no keyring secret; PostgreSQL without a keyring secret; a database
                that cannot be opened or reached (one line, never the password).
        """
        from ._stores import open_store

        keyring = require_keyring(settings)
        if settings.signing_key_path is not None:
            check_private([settings.signing_key_path], fix=settings.fix_permissions)
        store = await open_store(settings)
        try:
            if settings.signing_key_path is not None:
                keys = KeySet.single(key_from_file(settings.signing_key_path, keyring))
            else:
                keys = await load_keys(store, keyring)
            core = cls(settings, store, keys, keyring)
            await core._install_admin_secret()
        except BaseException:
            await store.close()
            raise
        return core

    def start_background(self) -> None:
        """Start the replica's upkeep on the running loop: key refresh and housekeeping (see :meth:`close`)."""
        from ._housekeeping import housekeeping_loop

        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self.live_keys.run(), name="agentwrit-key-refresh"),
            loop.create_task(housekeeping_loop(self.store, self.settings), name="agentwrit-housekeeping"),
        ]

    async def stop_background(self) -> None:
        background, self._background = self._background, []
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        await self.stop_background()
        try:
            await self.flush_denials(everything=True)  # what the open windows counted is not lost on shutdown
        except StoreUnavailable:
            logger.warning("could not write the audit summary of the last refused requests")
        await self.store.close()

    def tx(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction on the store (async context manager)."""
        return self.store.transaction()

    @property
    def keys(self) -> KeySet:
        """The keys this replica holds now (see :class:`~._keyset.LiveKeys`)."""
        return self.live_keys.keys

    @property
    def key(self) -> SigningKey:
        """The key this replica signs with now."""
        return self.live_keys.keys.current

    # -- admin secret -----------------------------------------------------------------------------------------

    async def _install_admin_secret(self) -> None:
        configured = self.settings.admin_secret
        if configured is None:
            if await self.stored_admin_hash() is None:
                raise ConfigurationError("no admin secret configured and none stored in the database")
            return
        record = hash_admin_secret(configured)
        async with self.tx() as tx:
            await tx.put_meta(_ADMIN_SECRET_KEY, record)

    async def stored_admin_hash(self) -> str | None:
        async with self.store.reader() as tx:
            return await tx.get_meta(_ADMIN_SECRET_KEY)

    @staticmethod
    def check_admin_secret(candidate: str, stored: str | None) -> bool:
        """Slow (scrypt): call it from a worker thread. Never touches the database."""
        return stored is not None and verify_admin_secret(candidate, stored)

    # -- tokens -----------------------------------------------------------------------------------------------

    async def mint(
        self,
        tx: Tx,
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
        jkt: str | None = None,
    ) -> Issued:
        """Sign a token and remember it in ``tx``.

        ``ttl`` is capped by the global ``max_ttl``, and ``exp`` by ``exp_cap`` (a delegator's expiry) and by
        ``renew_until``: the absolute end of the token's renewal line, fixed at first issue (``None``: this is the
        first issue, so now + the session lifetime of ``kind``) and carried over by every renewal.
        ``audience`` (extension) binds the token to one resource: its ``aud`` is exactly ``[audience]``.
        ``jkt`` (extension) binds it to a key: ``cnf: {"jkt": jkt}`` (see :mod:`._pop`).

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
        if jkt:
            claims["cnf"] = {"jkt": jkt}  # extension: key-bound token
        token = _jwt.encode(claims, self.keys.current)
        if len(token) > _jwt.MAX_TOKEN_LENGTH:
            # Every verifier (ours on both sides) refuses a longer token: issuing it would hand out a dud. The
            # caller's transaction rolls back, so nothing (nonce, launch token) is consumed.
            raise bad_request(
                f"the token would be longer than {_jwt.MAX_TOKEN_LENGTH} bytes",
                hint="ask for fewer or shorter scopes",
            )
        await tx.insert_token(
            TokenRow(
                jti=jti,
                sub=sub,
                task_id=task_id,
                orch_id=orch_id,
                chain_root=chain_root_of(claims),
                lineage=lineage or jti,
                exp=exp,
                kind=kind,
                parent_lineage=parent_lineage,
                renewed_from=renewed_from,
                ttl=ttl,
                exp_cap=exp_cap,
                iat=now,
                renew_until=renew_until,
                audience=audience,
                jkt=jkt,
            )
        )
        self.verified.add(token, claims)  # signed here a moment ago: presenting it needs no signature check
        self.metrics.token_issued(scope)
        return Issued(token, claims, exp - now)

    def session_end(self, kind: str, first_issued: int) -> int:
        """The absolute end of a renewal line of ``kind`` first issued at ``first_issued`` (unix seconds)."""
        settings = self.settings
        return first_issued + (settings.admin_session_lifetime if kind == "admin" else settings.session_lifetime)

    async def verify(self, token: object) -> dict[str, Any]:
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
        keys = self.keys

        def key_for(kid: object) -> SigningKey | None:
            return keys.for_kid(kid, now)

        try:
            claims = _jwt.verify(
                token,
                key_for,
                now=now,
                issuer=self.settings.issuer,
                audience=self.settings.audience_list,
                max_ttl=self.settings.max_ttl,
            )
        except _jwt.TokenInvalid:
            # A key this replica does not hold yet (rotated in on another replica a moment ago)?
            kid = _jwt.kid_of(token) if isinstance(token, str) else None
            if kid is not None and keys.for_kid(kid, now) is None and await self.live_keys.learn(kid):
                return await self.verify(token)
            bound = await expected_audience(self.store, token) if isinstance(token, str) else None
            if bound is None:  # not a resource-bound token of ours (extension): the refusal stands
                raise
            claims = _jwt.verify(
                token, key_for, now=now, issuer=self.settings.issuer, audience=bound, max_ttl=self.settings.max_ttl
            )
        if isinstance(token, str):  # always, once verify() accepted it
            self.verified.add(token, claims)
        return claims

    async def live_claims(self, token: object) -> dict[str, Any] | None:
        """Claims of a valid, unrevoked token, or ``None`` (the validate endpoint's single question)."""
        try:
            claims = await self.verify(token)
        except _jwt.TokenInvalid:
            return None
        return None if self.revocations.claims_revoked(claims) else claims

    async def authenticate(
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
            claims = await self.verify(credential)
        except _jwt.TokenInvalid as exc:
            logger.debug("bearer token refused on %s: %s", path, exc)
            await record("token_auth_failed", detail="token verification failed", resource=path)
            raise unauthorized() from None
        if self.revocations.claims_revoked(claims):
            # A revoked token is no credential: its replays are aggregated like a forged token's.
            await record(
                "token_revoked_access",
                claims=claims,
                anonymous=True,
                detail="a revoked token was presented",
                resource=path,
            )
            raise insufficient_scope("token has been revoked")
        if required_scope is not None and not self._holds(claims, required_scope):
            await record(scope_event, claims=claims, detail=f"endpoint requires {required_scope}", resource=path)
            raise insufficient_scope(f"this endpoint requires the scope {required_scope}")
        if principals is not None and principal_kind(claims) not in principals:
            wanted = " or ".join(principals)
            await record(scope_event, claims=claims, detail=f"endpoint is for {wanted} tokens", resource=path)
            raise insufficient_scope(f"this endpoint is for {wanted} tokens")
        return claims

    @staticmethod
    def _holds(claims: dict[str, Any], required: str) -> bool:
        try:
            return covers_all(claims["scope"], [required])
        except ScopeError:
            return False

    # -- audit helpers ----------------------------------------------------------------------------------------

    async def record_denial(
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
        await self.flush_denials()
        if (claims is None if anonymous is None else anonymous) and not self.denials.admit(
            request_peer.get(), event_type
        ):
            return
        async with self.tx() as tx:
            await _audit.append(tx, event_type, outcome="denied", **fields)

    async def flush_denials(self, *, everything: bool = False) -> None:
        """Write the summary of every aggregation window that is over (all of them with ``everything``)."""
        closed = self.denials.close(everything=everything)
        if not closed:
            return
        async with self.tx() as tx:
            for win in closed:
                await _audit.append(tx, win.event_type, outcome="denied", detail=win.summary())

    async def deny(
        self, problem: Problem, event_type: str, *, claims: dict[str, Any] | None = None, **fields: Any
    ) -> Problem:
        """Audit a refusal and hand back the problem to raise: ``raise await core.deny(problem, "event", ...)``."""
        await self.record_denial(event_type, claims=claims, **fields)  # ``anonymous``, when given, is in ``fields``
        return problem

    # -- health -----------------------------------------------------------------------------------------------

    async def db_connected(self) -> bool:
        return await self.store.ping()

    async def count_active_agents(self) -> int:
        """Registered agents holding at least one live, unrevoked token."""
        async with self.store.reader() as tx:
            return await tx.count_active_agents(int(time.time()))

    def uptime(self) -> int:
        return int(time.monotonic() - self.started)
