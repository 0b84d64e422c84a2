"""Sending a call over httpx: for an ``httpx.Client``/``httpx.AsyncClient`` a caller hands us, a transport of their
own (tests: ``httpx.MockTransport``), or a broker reached through a proxy from the environment.

The clients we build for a direct connection use our own wire instead (:mod:`._wire`, :mod:`._awire`); both
kinds answer :class:`~._steps.Response` and raise :class:`~agentwrit_tools.errors.BrokerUnavailable` the same way.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Protocol

import anyio
import httpx

from ..errors import BrokerUnavailable
from ._steps import Call, Response

__all__ = ["AsyncHttpxSender", "HttpxSender", "SyncSender"]

log = logging.getLogger("agentwrit_tools.client")

# Errors raised before the request left this process: resending cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class SyncSender(Protocol):
    """What the sync driver sends with."""

    def send(self, call: Call) -> Response: ...

    def close(self) -> None: ...


def _request_args(call: Call) -> dict[str, Any]:
    headers = {"X-Request-ID": secrets.token_hex(8), **call.headers()}
    content = call.content()
    if content is not None:
        headers["Content-Type"] = "application/json"
    return {"content": content, "params": call.params, "headers": headers}


def _unavailable(call: Call, exc: httpx.TransportError) -> BrokerUnavailable:
    # The httpx message is left out on purpose (it may quote a URL); its class says what happened.
    return BrokerUnavailable(
        f"{call.method} {call.path}: no answer from the broker ({type(exc).__name__})",
        method=call.method,
        path=call.path,
        sent=not isinstance(exc, _NOT_SENT),
    )


def _response(call: Call, raw: httpx.Response, started: float) -> Response:
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s -> %s in %.1f ms (request %s)",
            call.method,
            call.path,
            raw.status_code,
            (time.perf_counter() - started) * 1000,
            raw.headers.get("x-request-id", "-"),
        )
    # httpx.Headers already answers lookups case-insensitively and iterates lower-case names: no copy needed.
    return Response(raw.status_code, raw.headers, raw.content)


class _Urls:
    """Absolute ``httpx.URL`` objects per path, parsed once: httpx would otherwise parse the URL on every call.

    Bounded, because a few paths carry an identifier (``/v1/admin/apps/{id}``).
    """

    _LIMIT = 256

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._parsed: dict[str, httpx.URL] = {}

    def __call__(self, path: str) -> httpx.URL:
        url = self._parsed.get(path)
        if url is None:
            url = httpx.URL(self.base_url + path)
            if len(self._parsed) < self._LIMIT:
                self._parsed[path] = url
        return url


class HttpxSender:
    """Sends with an ``httpx.Client`` (closed by :meth:`close` only when ``owns_client``)."""

    def __init__(self, base_url: str, client: httpx.Client, *, owns_client: bool) -> None:
        self.client = client
        self._owns = owns_client
        self._url = _Urls(base_url)

    def send(self, call: Call) -> Response:
        started = time.perf_counter()
        try:
            raw = self.client.request(call.method, self._url(call.path), **_request_args(call))
        except httpx.TransportError as exc:
            raise _unavailable(call, exc) from exc
        return _response(call, raw, started)

    def close(self) -> None:
        if self._owns:
            self.client.close()


class AsyncHttpxSender:
    """Sends with an ``httpx.AsyncClient``.

    With ``max_in_flight``, at most that many requests are handed to httpx at once (the pool size of a client
    the caller gave us); the others wait here, in order, at most ``pool_timeout``. httpcore's own queue
    re-scans every waiting request against every connection whenever one frees up, so with many more
    concurrent calls than connections the client spent its CPU on that bookkeeping. Clients we build over httpx
    use :class:`~agentwrit_tools.client._lanes.LaneTransport` instead, which needs no such bound.
    """

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        owns_client: bool,
        max_in_flight: int | None = None,
        pool_timeout: float | None = None,
    ) -> None:
        self.client = client
        self._owns = owns_client
        self._url = _Urls(base_url)
        self._max_in_flight = max_in_flight
        self._pool_timeout = pool_timeout
        self._slots: anyio.Semaphore | None = None  # made on first use, inside the event loop

    async def send(self, call: Call) -> Response:
        if self._max_in_flight is None:
            return await self._request(call)
        slots = self._slots
        if slots is None:
            slots = self._slots = anyio.Semaphore(self._max_in_flight)
        try:
            with anyio.fail_after(self._pool_timeout):
                await slots.acquire()
        except TimeoutError:
            raise _unavailable(call, httpx.PoolTimeout("no free connection")) from None
        try:
            return await self._request(call)
        finally:
            slots.release()

    async def _request(self, call: Call) -> Response:
        started = time.perf_counter()
        try:
            raw = await self.client.request(call.method, self._url(call.path), **_request_args(call))
        except httpx.TransportError as exc:
            raise _unavailable(call, exc) from exc
        return _response(call, raw, started)

    async def aclose(self) -> None:
        if self._owns:
            await self.client.aclose()
