"""Fixtures for the resource-side suite: a real broker (extensions on and off), an app that mints, and the three
protected test apps served over loopback — FastAPI under uvicorn, Starlette + ASGI middleware under uvicorn, Flask
under werkzeug's threaded server.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from resource_support import APPS, serve_asgi, serve_wsgi

from agentwrit_tools import AsyncVerifier, Broker, Credential, Verifier
from agentwrit_tools.resource import AccessRecord, log_access

BOUND = 0.3  # the verifiers' revocation bound, in seconds
_names = itertools.count()


@pytest.fixture(scope="session", params=[True, False], ids=["local", "remote"])
def rbroker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running broker: with its extensions (JWKS + revocation feed: verifiers go local), and without (remote)."""
    if request.param:
        yield request.getfixturevalue("broker")
        return
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker(db_path=tmp_path_factory.mktemp("resource-plain") / "broker.db", extensions=False) as running:
        yield running


@pytest.fixture(scope="session")
def extensions(rbroker: Any) -> bool:
    return bool(rbroker.settings.extensions)


class Minter:
    """Mints the tokens the tests present, each under a task of its own."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def mint(self, scope: str, *, ttl: int | None = None) -> Credential:
        return self.broker.mint(scope, orch_id="resource-tests", task_id=f"rt-{secrets.token_hex(5)}", ttl=ttl)


@pytest.fixture(scope="session")
def minter(rbroker: Any) -> Iterator[Minter]:
    app = rbroker.create_app(f"resource-{next(_names)}", ["read:records:*", "write:records:*"])
    with Broker(rbroker.url, app.client_id, app.client_secret, admin_secret=rbroker.admin_secret) as client:
        yield Minter(client)


@dataclass
class Tokens:
    read_p1: Credential
    write_p1: Credential
    read_any: Credential
    expired: str


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


@dataclass
class Served:
    """One protected test app, running."""

    url: str
    framework: str
    extensions: bool
    records: list[AccessRecord] = field(default_factory=list)

    def record(self, request_id: str) -> AccessRecord:
        found = [r for r in self.records if r.request_id == request_id]
        assert len(found) == 1, f"expected one access record for request {request_id}, got {len(found)}"
        return found[0]


@pytest.fixture(scope="session", params=sorted(APPS))
def served(request: pytest.FixtureRequest, rbroker: Any, extensions: bool) -> Iterator[Served]:
    framework: str = request.param
    served = Served("", framework, extensions)
    hooks = [served.records.append, log_access]
    options: dict[str, Any] = {"revocation_bound": BOUND, "leeway": 0}
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
