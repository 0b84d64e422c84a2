"""A credential: one token's lifecycle (use, renew, delegate, release), sync and async.

State, claims and the rules live in :class:`CredentialBase`; ``Credential`` and ``AsyncCredential`` only drive
the flows. The token never appears in ``repr``/``str`` — it is reachable only through ``access_token``,
``bearer_header`` and :meth:`~CredentialBase.headers_for`, which callers ask for on purpose.

A credential also keeps the private key of the agent it was registered for (generated for the broker's
challenge, never sent anywhere). When the token is key-bound (``cnf.jkt``), :meth:`~CredentialBase.headers_for`
signs a fresh proof with that key for each request (:mod:`agentwrit_tools.pop`), so a copy of the token alone is
worthless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import AgentWritError, ConfigurationError, CredentialReleased
from ..pop import make_proof
from . import _flows
from ._claims import Claims
from ._drivers import AsyncDriver, SyncDriver
from ._flows import Core, Minted
from ._steps import Flow, Trips

__all__ = ["AsyncCredential", "Credential", "CredentialBase"]

D = TypeVar("D", SyncDriver, AsyncDriver)
log = logging.getLogger("agentwrit_tools.client")


class CredentialBase(Generic[D]):
    """What both credential kinds share: the token, its verified claims, and the released flag."""

    def __init__(self, minted: Minted, *, core: Core, driver: D) -> None:
        self._agent_id = minted.agent_id
        self._token = minted.access_token
        self._claims = minted.claims
        self._key: Ed25519PrivateKey | None = minted.key
        self._released = False
        self._core = core
        self._driver: D = driver
        self._lock = threading.Lock()
        self.round_trips: int | None = None
        """Requests its mint (or delegation) made on the caller's path (None: not counted)."""
        self.prefetched: tuple[str, ...] = minted.prefetched
        """What its mint did not have to fetch on the caller's path (``nonce``, ``launch_token``)."""

    @property
    def agent_id(self) -> str:
        """SPIFFE ID of the agent this token belongs to (``sub``)."""
        return self._agent_id

    @property
    def access_token(self) -> str:
        """The compact JWS to present. Treat as a secret: never log it."""
        return self._token

    @property
    def claims(self) -> Claims:
        """Claims of the current token, as verified after it was issued (not as requested)."""
        return self._claims

    @property
    def scope(self) -> tuple[str, ...]:
        """Shortcut for ``claims.scope``."""
        return self._claims.scope

    @property
    def expires_at(self) -> datetime:
        """When the current token expires (UTC)."""
        return self._claims.expires_at

    @property
    def bearer_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``, ready for an HTTP client."""
        return {"Authorization": f"Bearer {self._token}"}

    @property
    def key_bound(self) -> bool:
        """The token is bound to a key (``cnf.jkt``): it is accepted only with a proof, see :meth:`headers_for`."""
        return self._claims.jkt is not None

    def headers_for(self, method: str, url: str) -> dict[str, str]:
        """The headers that present this credential with one request to ``url``.

        A key-bound token: ``Authorization: DPoP <token>`` and ``DPoP: <proof>`` — a proof signed by the agent's
        key for this method, this URL (query and fragment aside), now, with a fresh id and the token's hash (RFC
        9449); make new headers for every request, a proof is accepted once. A bearer token: ``Authorization:
        Bearer <token>``.

        Raises:
            ConfigurationError: the token is bound to a key this process does not hold (it was delegated to an
                agent of another process, which must present it itself), or ``url`` is not an http(s) URL.
        """
        if not self.key_bound:
            return self.bearer_header
        if self._key is None:
            raise ConfigurationError(
                f"the token of {self._agent_id!r} is bound to a key this process does not hold: its agent must "
                "present it"
            )
        try:
            proof = make_proof(self._key, method, url, self._token)
        except ValueError:
            raise ConfigurationError("headers_for needs an absolute http:// or https:// URL") from None
        return {"Authorization": f"DPoP {self._token}", "DPoP": proof}

    @property
    def released(self) -> bool:
        return self._released

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(agent_id={self._agent_id!r}, scope={list(self._claims.scope)!r}, "
            f"jti={self._claims.jti!r}, expires_at={self.expires_at.isoformat()!r}, released={self._released})"
        )

    __str__ = __repr__

    def _live_token(self, action: str) -> str:
        if self._released:
            raise CredentialReleased(f"the credential of {self._agent_id!r} was released; it cannot {action}")
        return self._token

    def _release_flow(self) -> Flow[bool]:
        if self._released:
            return False
        killed = yield from _flows.release(self._core, self._token, self._claims.jti, self._claims.exp)
        self._released = True
        return killed

    def _renew_flow(self) -> Flow[None]:
        minted = yield from _flows.renew(self._core, self._live_token("renew"), self._claims, self._key)
        with self._lock:
            self._token, self._claims = minted.access_token, minted.claims

    def _delegate_flow(
        self, to: str | CredentialBase[Any], scope: str | Sequence[str], ttl: int | None, audience: str | None
    ) -> Flow[Minted]:
        target, key = (to.agent_id, to._key) if isinstance(to, CredentialBase) else (to, None)
        token = self._live_token("delegate")
        return (
            yield from _flows.delegate(self._core, token, to=target, scope=scope, ttl=ttl, audience=audience, key=key)
        )


def _log_masked_release_failure(credential: CredentialBase[Any], failure: AgentWritError) -> None:
    """The body already failed: keep its exception, and say (without the token) that release failed too.

    The token then lives until its ``exp``; the warning is what makes that visible.
    """
    log.warning(
        "release of %r failed while another exception was propagating; the token lives until %s: %s",
        credential,
        credential.expires_at.isoformat(),
        failure,
    )


class Credential(CredentialBase[SyncDriver]):
    """A live token. ``with broker.mint(...) as cred:`` releases it on exit, whatever happens inside."""

    def release(self) -> bool:
        """Kill the token at the broker. Idempotent.

        Returns:
            True when this call killed it; False when it was already released, expired or revoked.
        """
        return self._driver.run(self._release_flow())

    def renew(self) -> None:
        """Swap the token for a fresh one (same agent and scope, new ``jti``/``exp``); the old one is revoked."""
        self._driver.run(self._renew_flow())

    def delegate(
        self,
        to: str | CredentialBase[Any],
        scope: str | Sequence[str],
        ttl: int | None = None,
        *,
        audience: str | None = None,
    ) -> Credential:
        """A narrower token for agent ``to`` (a SPIFFE ID or another credential), verified and gated.

        When ``to`` is a credential, the new one holds its key too, so a key-bound delegated token (bound to the
        delegate's key: a token delegated from a bound one always is) can present proofs. ``audience`` binds it to
        one resource (a broker extension; a token bound already keeps its binding and
        can only be delegated for that resource).

        Raises:
            AudienceMismatch: ``audience`` was asked for and the token is not bound to it (released first).
            ScopeViolation: ``scope`` is not within this credential's scope, or the chain is too deep.
            NotFound: ``to`` is not a registered agent.
            CredentialReleased: this credential was released.
        """
        trips = Trips()
        minted = self._driver.run(self._delegate_flow(to, scope, ttl, audience), trips)
        delegated = Credential(minted, core=self._core, driver=self._driver)
        delegated.round_trips = trips.count
        return delegated

    def __enter__(self) -> Credential:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.release()
        except AgentWritError as failure:
            if exc is None:
                raise
            _log_masked_release_failure(self, failure)


class AsyncCredential(CredentialBase[AsyncDriver]):
    """The async twin of :class:`Credential`; ``async with`` releases on exit, including on cancellation."""

    async def release(self) -> bool:
        """See :meth:`Credential.release`."""
        return await self._driver.run(self._release_flow())

    async def renew(self) -> None:
        """See :meth:`Credential.renew`."""
        await self._driver.run(self._renew_flow())

    async def delegate(
        self,
        to: str | CredentialBase[Any],
        scope: str | Sequence[str],
        ttl: int | None = None,
        *,
        audience: str | None = None,
    ) -> AsyncCredential:
        """See :meth:`Credential.delegate`."""
        trips = Trips()
        minted = await self._driver.run(self._delegate_flow(to, scope, ttl, audience), trips)
        delegated = AsyncCredential(minted, core=self._core, driver=self._driver)
        delegated.round_trips = trips.count
        return delegated

    async def __aenter__(self) -> AsyncCredential:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Shielded: a cancelled task must still release its credential rather than leave it to its TTL.
        with anyio.CancelScope(shield=True):
            try:
                await self.release()
            except AgentWritError as failure:
                if exc is None:
                    raise
                _log_masked_release_failure(self, failure)
