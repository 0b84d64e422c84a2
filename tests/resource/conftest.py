"""Fixtures for the resource-side suite: a real broker (extensions on and off), an app that mints, and the three
protected test apps served over loopback — FastAPI under uvicorn, Starlette + ASGI middleware under uvicorn, Flask
under werkzeug's threaded server.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from resource_support import APPS, BOUND, Minter, Served, Tokens, serve_asgi, serve_wsgi
from support import broker_extensions_on_or_off, feed_reader

from agentwrit_tools import AsyncVerifier, Broker, Verifier
from agentwrit_tools.resource import log_access

_names = itertools.count()


@pytest.fixture(scope="session", params=[True, False], ids=["local", "remote"])
def rbroker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running broker: with its extensions (JWKS + revocation feed: verifiers go local), and without (remote)."""
    yield from broker_extensions_on_or_off(request, tmp_path_factory)


@pytest.fixture(scope="session")
def extensions(rbroker: Any) -> bool:
    return bool(rbroker.settings.extensions)


@pytest.fixture(scope="session")
def minter(rbroker: Any) -> Iterator[Minter]:
    app = rbroker.create_app(f"resource-{next(_names)}", ["read:records:*", "write:records:*"])
    with Broker(rbroker.url, app.client_id, app.client_secret, admin_secret=rbroker.admin_secret) as client:
        yield Minter(client)


@pytest.fixture(scope="session")
def tokens(minter: Minter) -> Tokens:
    """Tokens reused across tests (never revoked); ``expired`` is a ttl=1 token whose ``exp`` has passed."""
    short = minter.mint("read:records:P-1", ttl=1)
    minted = Tokens(
        read_p1=minter.mint("read:records:P-1"),
        write_p1=minter.mint("write:records:P-1"),
        read_any=minter.mint("read:records:*"),
        expired=short.access_token,
    )
    time.sleep(max(0.0, short.claims.exp - time.time() + 0.2))
    return minted


@pytest.fixture(scope="session", params=sorted(APPS))
def served(request: pytest.FixtureRequest, rbroker: Any, extensions: bool) -> Iterator[Served]:
    framework: str = request.param
    served = Served("", framework, extensions)
    hooks = [served.records.append, log_access]
    options: dict[str, Any] = {"revocation_bound": BOUND, "leeway": 0, **feed_reader(rbroker)}
    if framework == "fastapi":
        app = APPS[framework](AsyncVerifier(rbroker.url, **options), hooks)
        with serve_asgi(app) as url:
            served.url = url
            yield served
        return
    with Verifier(rbroker.url, **options) as verifier:
        app = APPS[framework](verifier, hooks)
        with serve_asgi(app) if framework == "asgi" else serve_wsgi(app) as url:
            served.url = url
            yield served


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
