"""How a broker client sends: our own HTTP/1.1 wire by default, httpx when asked for or needed.

* Our wire (:mod:`._wire`, :mod:`._awire`) for a client we build ourselves with a direct connection to the broker:
  kept-alive connections, one write per request, about a tenth of httpx's client CPU per request.
* httpx for an ``httpx.Client``/``httpx.AsyncClient`` or transport the caller hands us (used as it is, never
  closed by us), and for a broker that the environment says to reach through a proxy (``HTTPS_PROXY`` …), which
  httpx honours. The httpx clients we build keep no cookie jar — the contract authenticates with bearer tokens
  only, so a ``Set-Cookie`` from the broker (or from anything between us and it) is never stored and replayed —
  and, async, spread requests over single-connection lanes (:mod:`._lanes`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httpx

from ._awire import AsyncSender, AsyncWire
from ._config import Settings
from ._drivers import USER_AGENT, AsyncDriver, SyncDriver
from ._lanes import LaneTransport
from ._senders import AsyncHttpxSender, HttpxSender
from ._wire import SyncWire

__all__ = ["async_driver", "proxied", "sync_driver"]


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


def proxied(broker_url: str) -> bool:
    """True when the environment routes this URL through a proxy (httpx then carries the requests)."""
    parts = urlsplit(broker_url)
    proxies = getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass_environment(parts.netloc, proxies)


def sync_driver(
    settings: Settings, http_client: httpx.Client | None, transport: httpx.BaseTransport | None
) -> SyncDriver:
    """The sync driver: over the caller's client or transport, through httpx when proxied, else our wire."""
    url = settings.broker_url
    if http_client is not None:
        return SyncDriver(url, HttpxSender(url, http_client, owns_client=False))
    if transport is None and not proxied(url):
        wire = SyncWire(url, timeout=settings.timeout, max_connections=settings.max_connections, user_agent=USER_AGENT)
        return SyncDriver(url, wire)
    client = _CookielessClient(
        timeout=settings.timeouts(), limits=settings.limits(), transport=transport, headers={"User-Agent": USER_AGENT}
    )
    return SyncDriver(url, HttpxSender(url, client, owns_client=True))


def _async_httpx(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> AsyncSender:
    url, limit, wait = settings.broker_url, settings.max_connections, settings.timeout
    client = _CookielessAsyncClient(
        timeout=settings.timeouts(),
        limits=settings.limits(),
        transport=transport or LaneTransport(limit),
        headers={"User-Agent": USER_AGENT},
    )
    if transport is None:  # the lanes bound what is in flight themselves
        return AsyncHttpxSender(url, client, owns_client=True)
    return AsyncHttpxSender(url, client, owns_client=True, max_in_flight=limit, pool_timeout=wait)


def async_driver(
    settings: Settings, http_client: httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None
) -> AsyncDriver:
    """The async driver: over the caller's client or transport, through httpx when proxied, else our wire."""
    url, limit, wait = settings.broker_url, settings.max_connections, settings.timeout
    if http_client is not None:
        sender: AsyncSender = AsyncHttpxSender(
            url, http_client, owns_client=False, max_in_flight=limit, pool_timeout=wait
        )
    elif transport is None and not proxied(url):
        sender = AsyncWire(
            url,
            timeout=wait,
            max_connections=limit,
            user_agent=USER_AGENT,
            fallback=lambda: _async_httpx(settings, None),
        )
    else:
        sender = _async_httpx(settings, transport)
    return AsyncDriver(url, sender)
