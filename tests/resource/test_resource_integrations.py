"""What the shared HTTP matrix does not cover: per-route ASGI middleware, WebSocket handshakes, the middleware's
options, FastAPI without the problem handler or with a sync verifier, handlers calling ``arequire`` themselves,
and the Flask decorator's edges. Starlette's TestClient (ASGI in-process) where a socket adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import flask
import pytest
from fastapi import Depends, FastAPI, Request
from resource_support import BOUND, Tokens
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from support import feed_reader

from agentwrit_tools import AsyncVerifier, Claims, ConfigurationError, Verifier
from agentwrit_tools.resource import AccessRecord, arequire
from agentwrit_tools.resource.asgi import AccessMiddleware, Rule, claims_of
from agentwrit_tools.resource.fastapi import Requires, install
from agentwrit_tools.resource.flask import current_claims, requires

READ = "read:records:{patient_id}"


@pytest.fixture
def verifier(rbroker: Any) -> Iterator[Verifier]:
    with Verifier(rbroker.url, revocation_bound=BOUND, leeway=0, **feed_reader(rbroker)) as v:
        yield v


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def whoami(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"sub": claims_of(request).sub, "patient": request.path_params.get("patient_id")})


# ---- ASGI middleware ------------------------------------------------------------------------------------------


def test_per_route_middleware_uses_the_routers_path_parameters(verifier: Verifier, tokens: Tokens) -> None:
    records: list[AccessRecord] = []
    guarded = [Middleware(AccessMiddleware, verifier=verifier, scopes=READ, access_log=records.append)]
    app = Starlette(routes=[Route("/records/{patient_id}", whoami, middleware=guarded), Route("/open", whoami)])
    with TestClient(app) as client:
        ok = client.get("/records/P-1", headers=bearer(tokens.read_p1.access_token))
        assert ok.status_code == 200
        assert ok.json() == {"sub": tokens.read_p1.agent_id, "patient": "P-1"}
        assert client.get("/records/P-2", headers=bearer(tokens.read_p1.access_token)).status_code == 403
        assert client.get("/records/*", headers=bearer(tokens.read_any.access_token)).status_code == 400
        assert client.get("/records/P-1").status_code == 401
        with pytest.raises(LookupError):
            client.get("/open")  # not behind the middleware: no claims to read
    assert [r.route for r in records] == ["/records/{patient_id}"] * 4


def test_a_websocket_handshake_is_checked_too(verifier: Verifier, tokens: Tokens) -> None:
    async def echo_sub(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(claims_of(websocket).sub)
        await websocket.close()

    rules = [Rule("/ws/{patient_id}", READ)]
    app = Starlette(
        routes=[WebSocketRoute("/ws/{patient_id}", echo_sub)],
        middleware=[Middleware(AccessMiddleware, verifier=verifier, rules=rules, access_log=None)],
    )
    with TestClient(app) as client:
        with client.websocket_connect("/ws/P-1", headers=bearer(tokens.read_p1.access_token)) as ws:
            assert ws.receive_text() == tokens.read_p1.agent_id
        for headers in ({}, bearer(tokens.expired)):
            with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/P-1", headers=headers):
                pass
            assert closed.value.code == 1008
        other_patient = bearer(tokens.read_p1.access_token)
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/P-2", headers=other_patient):
            pass
        assert closed.value.code == 1008


def test_rules_match_methods_and_head_follows_get(verifier: Verifier, tokens: Tokens) -> None:
    rules = [Rule("/records/{patient_id}", READ, methods=["get"])]
    app = Starlette(
        routes=[Route("/records/{patient_id}", whoami, methods=["GET", "DELETE"])],
        middleware=[Middleware(AccessMiddleware, verifier=verifier, rules=rules, access_log=None)],
    )
    with TestClient(app) as client:
        token = tokens.read_p1.access_token
        assert client.head("/records/P-1", headers=bearer(token)).status_code == 200
        assert client.head("/records/P-2", headers=bearer(token)).status_code == 403
        refused = client.delete("/records/P-1", headers=bearer(token))  # no rule for DELETE: closed
        assert refused.status_code == 403
        assert refused.json()["detail"] == "no access rule matches this request"


def test_unmatched_allow_passes_unknown_routes_but_still_checks_ruled_ones(verifier: Verifier, tokens: Tokens) -> None:
    async def hello(request: StarletteRequest) -> PlainTextResponse:
        return PlainTextResponse("hi")

    rules = [Rule("/records/{patient_id}", READ)]
    app = Starlette(
        routes=[Route("/records/{patient_id}", whoami), Route("/hello", hello)],
        middleware=[
            Middleware(AccessMiddleware, verifier=verifier, rules=rules, unmatched="allow", access_log=None, realm="rx")
        ],
    )
    with TestClient(app) as client:
        assert client.get("/hello").text == "hi"
        refused = client.get("/records/P-1")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="rx"'


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"rules": [], "scopes": READ},
        {"rules": [Rule("/x", READ, public=True)]},
        {"rules": [Rule("/x")]},
        {"rules": [Rule("x", READ)]},
        {"rules": [Rule("/x/{a}/{a}", READ)]},
        {"rules": [Rule("/x/{a-b}", READ)]},
        {"rules": [Rule("/x", [])]},
        {"scopes": READ, "unmatched": "maybe"},
    ],
)
def test_middleware_configuration_errors_surface_at_startup(verifier: Verifier, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        AccessMiddleware(PlainTextResponse("x"), verifier=verifier, **options)


# ---- FastAPI --------------------------------------------------------------------------------------------------


def test_fastapi_without_install_still_refuses_with_the_right_status(verifier: Verifier, tokens: Tokens) -> None:
    app = FastAPI()
    read = Requires(verifier, READ, access_log=None)

    @app.get("/records/{patient_id}")
    def record(patient_id: str, claims: Claims = Depends(read)) -> dict[str, str]:  # noqa: B008
        return {"sub": claims.sub}

    with TestClient(app) as client:
        assert client.get("/records/P-1", headers=bearer(tokens.read_p1.access_token)).status_code == 200
        missing = client.get("/records/P-1")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json() == {"detail": "missing Authorization header"}  # FastAPI's own body shape
        other = client.get("/records/P-2", headers=bearer(tokens.read_p1.access_token))
        assert other.status_code == 403
        assert 'error="insufficient_scope"' in other.headers["www-authenticate"]


def test_fastapi_with_a_sync_verifier_and_a_handler_using_arequire(verifier: Verifier, tokens: Tokens) -> None:
    app = FastAPI()
    install(app)
    read = Requires(verifier, READ, access_log=None, realm="records")

    @app.get("/records/{patient_id}")
    async def record(request: Request, claims: Claims = Depends(read)) -> dict[str, str]:  # noqa: B008
        assert request.state.agentwrit_claims is claims
        return {"sub": claims.sub}

    @app.get("/notes/{note_id}")
    async def note(note_id: str, request: Request) -> dict[str, str]:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        claims = await arequire(verifier, token, "read:records:{note_id}", params={"note_id": note_id}, access_log=None)
        return {"sub": claims.sub}

    with TestClient(app) as client:
        assert client.get("/records/P-1", headers=bearer(tokens.read_p1.access_token)).json()["sub"]
        refused = client.get("/records/P-1", headers=bearer(tokens.expired))
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Bearer realm="records", error="invalid_token"')
        assert client.get("/notes/P-1", headers=bearer(tokens.read_p1.access_token)).status_code == 200
        denied = client.get("/notes/P-2", headers=bearer(tokens.read_p1.access_token))
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
        assert denied.json()["error_code"] == "insufficient_scope"
        assert denied.json()["instance"] == ""  # arequire had no request path to report
        openapi = client.get("/openapi.json").json()
        assert openapi["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# ---- Flask ----------------------------------------------------------------------------------------------------


def test_flask_refuses_an_async_verifier_at_decoration(rbroker: Any) -> None:
    verifier = AsyncVerifier(rbroker.url)
    with pytest.raises(ConfigurationError):
        requires(verifier, READ)  # type: ignore[arg-type]
    anyio.run(verifier.aclose)


def test_flask_async_views_are_awaited_after_the_check(verifier: Verifier, tokens: Tokens) -> None:
    app = flask.Flask("async-view")

    @requires(verifier, READ, access_log=None)
    async def view(patient_id: str) -> str:
        return current_claims().sub

    with app.test_request_context("/records/P-1", headers=bearer(tokens.read_p1.access_token)):
        flask.request.view_args = {"patient_id": "P-1"}
        assert anyio.run(view, "P-1") == tokens.read_p1.agent_id
    with app.test_request_context("/records/P-2", headers=bearer(tokens.read_p1.access_token)):
        flask.request.view_args = {"patient_id": "P-2"}
        refused = anyio.run(view, "P-2")
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"


def test_flask_current_claims_outside_a_checked_view(verifier: Verifier) -> None:
    app = flask.Flask("unchecked")
    with app.test_request_context("/"), pytest.raises(LookupError):
        current_claims()


def test_flask_test_client_and_int_converters(verifier: Verifier, tokens: Tokens) -> None:
    app = flask.Flask("converters")

    @app.get("/records/<int:patient_id>")
    @requires(verifier, READ, access_log=None)
    def record(patient_id: int) -> dict[str, Any]:
        return {"patient_id": patient_id, "sub": flask.g.agentwrit_claims.sub}

    client = app.test_client()
    # 7 renders as read:records:7; the P-1 token covers nothing here, the wildcard covers it.
    assert client.get("/records/7", headers=bearer(tokens.read_p1.access_token)).status_code == 403
    allowed = client.get("/records/7", headers=bearer(tokens.read_any.access_token))
    assert allowed.status_code == 200
    assert allowed.json == {"patient_id": 7, "sub": tokens.read_any.agent_id}
