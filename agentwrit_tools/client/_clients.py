"""The HTTP clients a broker client builds for itself, and the drivers over them.

A caller may hand us a ready ``httpx.Client``/``httpx.AsyncClient`` (used as it is, never closed by us); otherwise
we build one that suits the wire contract:

* no cookie jar — the contract authenticates with bearer tokens only, so a ``Set-Cookie`` from the broker (or
  from anything between us and it) is never stored and replayed on later calls; not parsing one on every
  response also saves about a tenth of a request's client-side cost;
* async: connections as single-connection lanes (:mod:`._lanes`), so client CPU per call stays flat as
  concurrency grows; a caller's own async client (or transport) gets a bound on requests in flight instead.
"""

from __future__ import annotations

from typing import Any

import httpx

from ._config import Settings
from ._drivers import USER_AGENT, AsyncDriver, SyncDriver
from ._lanes import LaneTransport

__all__ = ["async_driver", "sync_driver"]


class _NoCookies(httpx.Cookies):
    """A jar that stays empty."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.Client):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the broker client keeps no cookies")


class _CookielessAsyncClient(httpx.AsyncClient):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the broker client keeps no cookies")


def sync_driver(
    settings: Settings, http_client: httpx.Client | None, transport: httpx.BaseTransport | None
) -> SyncDriver:
    """The sync driver over the caller's client, or over one built with ``settings``."""
    if http_client is not None:
        return SyncDriver(settings.broker_url, http_client, owns_client=False)
    client = _CookielessClient(
        timeout=settings.timeouts(), limits=settings.limits(), transport=transport, headers={"User-Agent": USER_AGENT}
    )
    return SyncDriver(settings.broker_url, client, owns_client=True)


def async_driver(
    settings: Settings, http_client: httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None
) -> AsyncDriver:
    """The async driver over the caller's client, or over one built with ``settings`` (lanes by default)."""
    url, limit, wait = settings.broker_url, settings.max_connections, settings.timeout
    if http_client is not None:
        return AsyncDriver(url, http_client, owns_client=False, max_in_flight=limit, pool_timeout=wait)
    client = _CookielessAsyncClient(
        timeout=settings.timeouts(),
        limits=settings.limits(),
        transport=transport or LaneTransport(limit),
        headers={"User-Agent": USER_AGENT},
    )
    if transport is None:  # the lanes bound what is in flight themselves
        return AsyncDriver(url, client, owns_client=True)
    return AsyncDriver(url, client, owns_client=True, max_in_flight=limit, pool_timeout=wait)
