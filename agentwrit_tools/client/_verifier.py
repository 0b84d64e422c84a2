"""``Verifier`` and ``AsyncVerifier``: token verification for resource servers.

Same verification as ``Broker.verify`` (local JWKS + revocation bound, remote fallback), and nothing else: no
minting, no operator calls. With the broker URL alone it verifies remotely against a broker that guards its
revocation feed (the embedded one does); to verify locally, give it ``client_id``/``client_secret`` of an app of
its own, used only to read the feed — an app whose ceiling grants nothing the resource server should use.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from ._claims import Claims
from ._clients import async_driver, sync_driver
from ._config import Settings

__all__ = ["AsyncVerifier", "Verifier"]


class _VerifierBase:
    def __init__(self, broker_url: str, **options: Any) -> None:
        self.settings = Settings(broker_url, **options)
        self._core = self.settings.build_core()

    @property
    def verification_mode(self) -> str:
        """``unknown`` until the first verification, then ``local`` or ``remote``."""
        return self._core.verifier.mode

    @property
    def revocation_bound(self) -> float:
        """A token revoked at time t is refused by every verification starting after t + this many seconds."""
        return self._core.verifier.revocation_bound

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings.broker_url!r}, mode={self.verification_mode!r})"


class Verifier(_VerifierBase):
    """Verify tokens against one broker.

    Args:
        broker_url: the broker's base URL.
        options: ``revocation_bound``, ``strict_verify``, ``leeway``, ``issuer``, ``audience``, ``timeout``,
            ``retry``, ``max_connections`` (as for :class:`~agentwrit_tools.client.Broker`); ``client_id`` and
            ``client_secret`` of the app whose bearer reads the revocation feed (local verification).
        http_client / transport: as for :class:`~agentwrit_tools.client.Broker`.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(broker_url, **options)
        self._driver = sync_driver(self.settings, http_client, transport)

    def verify(self, token: str) -> Claims:
        """Claims of a valid, unrevoked token; :class:`~agentwrit_tools.errors.TokenInvalid` otherwise."""
        return self._driver.run(self._core.verifier.verify(token))

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncVerifier(_VerifierBase):
    """See :class:`Verifier`."""

    def __init__(
        self,
        broker_url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(broker_url, **options)
        self._driver = async_driver(self.settings, http_client, transport)

    async def verify(self, token: str) -> Claims:
        """See :meth:`Verifier.verify`."""
        return await self._driver.run(self._core.verifier.verify(token))

    async def aclose(self) -> None:
        await self._driver.aclose()

    async def __aenter__(self) -> AsyncVerifier:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
