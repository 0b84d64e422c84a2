"""Helpers for the resource-side tests: real servers on loopback, the three protected test apps, forgeries.

Every app serves the same API, protected by a different integration:

* ``GET  /records/{patient_id}`` needs ``read:records:{patient_id}``;
* ``POST /records/{patient_id}`` needs ``write:records:{patient_id}``;
* ``GET  /search?patient_id=…`` needs ``read:records:{patient_id}`` from the query string;
* ``GET  /strict/{patient_id}`` needs ``read:records:{patient_id}`` from a key-bound token only, with its proof of
  possession (``possession="required"``; the other routes check a proof when the token is bound);
* ``GET  /health`` is public (only where the integration has a notion of public routes).

Protected handlers answer with what they received, including the verified claims' ``sub`` and ``jti``, so a test
can tell that the claims reached the handler.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools import AsyncVerifier, Broker, Claims, Credential, Verifier
from agentwrit_tools.resource import AccessRecord

BOUND = 0.3  # the verifiers' revocation bound, in seconds
READ = "read:records:{patient_id}"
WRITE = "write:records:{patient_id}"


# ---- tokens and served apps (fixtures build them: see conftest.py) ------------------------------------------
class Minter:
    """Mints the tokens the tests present, each under a task of its own."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def mint(self, scope: str, *, ttl: int | None = None) -> Credential:
        return self.broker.mint(scope, orch_id="resource-tests", task_id=f"rt-{secrets.token_hex(5)}", ttl=ttl)


@dataclass
class Tokens:
    read_p1: Credential
    write_p1: Credential
    read_any: Credential
    expired: str


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


# ---- servers ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_asgi(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a loopback port (``sock``'s, when the app needs its own URL
    before it is built: see :func:`loopback_socket`); yields its base URL."""
    sock = sock or loopback_socket()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Run a WSGI app under werkzeug's real threaded server on a loopback port; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def loopback_socket() -> socket.socket:
    """A listening socket on an ephemeral loopback port, for :func:`serve_asgi`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def answer(path: str, claims: Claims, **values: Any) -> dict[str, Any]:
    return {"path": path, "sub": claims.sub, "jti": claims.jti, "scope": list(claims.scope), **values}


# ---- the three apps -----------------------------------------------------------------------------------------


def fastapi_app(verifier: Verifier | AsyncVerifier, access_log: Any) -> Any:
    from contextlib import asynccontextmanager

    from fastapi import Depends, FastAPI

    from agentwrit_tools.resource.fastapi import Requires, install

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        if isinstance(verifier, AsyncVerifier):
            await verifier.aclose()  # on the server's own loop, where its connections live

    app = FastAPI(lifespan=lifespan)
    install(app)
    read = Requires(verifier, READ, access_log=access_log)
    write = Requires(verifier, WRITE, access_log=access_log)
    strict = Requires(verifier, READ, access_log=access_log, possession="required")

    @app.get("/records/{patient_id}")
    async def get_record(patient_id: str, claims: Claims = Depends(read)) -> dict[str, Any]:  # noqa: B008
        return answer(f"/records/{patient_id}", claims, patient_id=patient_id)

    @app.post("/records/{patient_id}")
    async def post_record(patient_id: str, claims: Claims = Depends(write)) -> dict[str, Any]:  # noqa: B008
        return answer(f"/records/{patient_id}", claims, patient_id=patient_id, written=True)

    @app.get("/search")
    def search(patient_id: str, claims: Claims = Depends(read)) -> dict[str, Any]:  # noqa: B008
        return answer("/search", claims, patient_id=patient_id)

    @app.get("/strict/{patient_id}")
    async def get_strict(patient_id: str, claims: Claims = Depends(strict)) -> dict[str, Any]:  # noqa: B008
        return answer(f"/strict/{patient_id}", claims, patient_id=patient_id)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def starlette_app(verifier: Verifier | AsyncVerifier, access_log: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from agentwrit_tools.resource.asgi import AccessMiddleware, Rule, claims_of

    async def record(request: Request) -> JSONResponse:
        patient = request.path_params["patient_id"]
        extra = {"written": True} if request.method == "POST" else {}
        return JSONResponse(answer(request.url.path, claims_of(request), patient_id=patient, **extra))

    async def search(request: Request) -> JSONResponse:
        claims = request.state.agentwrit_claims
        return JSONResponse(answer("/search", claims, patient_id=request.query_params["patient_id"]))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    rules = [
        Rule("/records/{patient_id}", READ, methods=["GET"]),
        Rule("/records/{patient_id}", WRITE, methods=["POST"]),
        Rule("/search", READ, methods=["GET"]),
        Rule("/strict/{patient_id}", READ, methods=["GET"], possession="required"),
        Rule("/health", public=True),
    ]
    routes = [
        Route("/records/{patient_id}", record, methods=["GET", "POST"]),
        Route("/strict/{patient_id}", record),
        Route("/search", search),
        Route("/health", health),
    ]
    middleware = [Middleware(AccessMiddleware, verifier=verifier, rules=rules, access_log=access_log)]
    return Starlette(routes=routes, middleware=middleware)


def flask_app(verifier: Verifier, access_log: Any) -> Any:
    from flask import Flask, g, request

    from agentwrit_tools.resource.flask import current_claims, requires

    app = Flask("resource-tests")

    @app.get("/records/<patient_id>")
    @requires(verifier, READ, access_log=access_log)
    def get_record(patient_id: str) -> dict[str, Any]:
        return answer(f"/records/{patient_id}", current_claims(), patient_id=patient_id)

    @app.post("/records/<patient_id>")
    @requires(verifier, WRITE, access_log=access_log)
    def post_record(patient_id: str) -> dict[str, Any]:
        return answer(f"/records/{patient_id}", g.agentwrit_claims, patient_id=patient_id, written=True)

    @app.get("/search")
    @requires(verifier, READ, access_log=access_log)
    def search() -> dict[str, Any]:
        return answer("/search", current_claims(), patient_id=request.args["patient_id"])

    @app.get("/strict/<patient_id>")
    @requires(verifier, READ, access_log=access_log, possession="required")
    def get_strict(patient_id: str) -> dict[str, Any]:
        return answer(f"/strict/{patient_id}", current_claims(), patient_id=patient_id)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


APPS: dict[str, Callable[..., Any]] = {"fastapi": fastapi_app, "asgi": starlette_app, "flask": flask_app}


# ---- forgeries ----------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def signed_by_another_key(token: str) -> str:
    """The same header (same ``kid``) and claims, signed with a fresh Ed25519 key the broker never had."""
    header, payload, _ = parts(token)
    return jwt.encode(payload, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]})


def alg_none(token: str, **changes: Any) -> str:
    """An unsigned token (``alg: none``) with the real ``kid``."""
    header, payload, _ = parts(token)
    payload.update(changes)
    head = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": header["kid"]}).encode())
    return f"{head}.{_b64(json.dumps(payload).encode())}."


def tampered(token: str, **changes: Any) -> str:
    """The real header and signature over a payload with ``changes`` (a widened scope, a later exp…)."""
    head, payload_b64, signature = token.split(".")
    payload = json.loads(_unb64(payload_b64))
    payload.update(changes)
    return f"{head}.{_b64(json.dumps(payload).encode())}.{signature}"
