"""The HTTP edge: the FastAPI app factory, the response-hardening middleware and the error handlers.

Guarantees made here, for every response including errors:

* errors are RFC 7807 ``application/problem+json`` with the contract's fields — FastAPI's 422 validation
  errors become 400 ``invalid_request``, unknown paths 404 ``not_found``, wrong methods 405;
* an error body never echoes what the client put in the URL: ``instance`` (the contract's "request path") is the
  *route template* the request matched — the path itself for every endpoint but ``/v1/admin/apps/{app_id}`` —
  and empty for a request that matched no route; details name no path, method or id from the request;
* ``X-Request-ID`` (the client's if it sent a sane one, else 16 hex characters), ``X-Content-Type-Options:
  nosniff``, ``Cache-Control: no-store`` and ``X-Frame-Options: DENY``;
* bodies over the limit are refused with 413 (from ``Content-Length`` up front, or while streaming), and a body
  not declared ``application/json`` with 415 (:func:`read_json`, the one way an endpoint reads a body);
* the request's peer (an IP address: the connection's, or what a trusted proxy reports) is published for the
  request in ``_denials.request_peer``, for rate limits and the audit;
* a store that cannot reach its database answers 503 ``service_unavailable`` with ``Retry-After`` — never a
  500, and never a success that was not stored;
* nothing ever answers with a traceback: an unexpected exception is logged as one generic line and answered
  with a bare 500 problem.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ._bodies import parse_json_object
from ._core import BrokerCore
from ._denials import peer_of, request_peer
from ._problems import Problem, problem_body
from ._settings import BrokerSettings
from ._store import StoreUnavailable

__all__ = ["create_app", "problem_response", "read_json", "route_template", "store_unavailable_response"]

logger = logging.getLogger("agentwrit_tools.broker")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM_TYPE = "application/problem+json"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
)
_OWN = {b"x-request-id", *(name for name, _ in _SECURITY_HEADERS)}
_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}
RETRY_AFTER = "1"


def _request_id(request: Request) -> str:
    state = request.scope.get("state") or {}
    return str(state.get("request_id") or secrets.token_hex(8))


def route_template(scope: Scope) -> str:
    """The path template of the route ``scope`` matched (or would match), ``""`` when it matches none.

    Routing records the route in the scope; a request refused before routing (body too large, bad
    ``Content-Length``) is matched here against the app's routes, so its problem names the endpoint too.
    """
    route = scope.get("route")
    if route is None:
        for candidate in getattr(scope.get("app"), "routes", ()):
            if candidate.matches(scope)[0] != Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", "")
    return path if isinstance(path, str) else ""


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body = problem_body(
        problem.status,
        problem.error_code,
        problem.detail,
        instance=route_template(request.scope),
        request_id=_request_id(request),
        hint=problem.hint,
    )
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_TYPE, headers=problem.headers)


def _raw_problem(status: int, error_code: str, detail: str, path: str, request_id: str) -> tuple[bytes, list[Any]]:
    body = json.dumps(problem_body(status, error_code, detail, instance=path, request_id=request_id)).encode()
    headers = [(b"content-type", PROBLEM_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    return body, headers


class HardeningMiddleware:
    """Pure ASGI middleware (so it also covers responses produced outside FastAPI's exception handlers)."""

    def __init__(self, app: ASGIApp, *, max_body: int, observe: Callable[[str, float], None]) -> None:
        self.app = app
        self.max_body = max_body
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _SANE_REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        peer = request_peer.set(peer_of(scope.get("client")))
        extra = [(b"x-request-id", request_id.encode("ascii")), *_SECURITY_HEADERS]
        response_started = False

        async def send_hardened(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                kept = [(k, v) for k, v in message.get("headers") or [] if k.lower() not in _OWN]
                message = {**message, "headers": kept + extra}
            await send(message)

        async def refuse(status: int, code: str, detail: str) -> None:
            body, raw_headers = _raw_problem(status, code, detail, route_template(scope), request_id)
            await send_hardened({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send_hardened({"type": "http.response.body", "body": body})

        try:
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or len(length) > 18):
                await refuse(400, "invalid_request", "malformed Content-Length header")
            elif length is not None and int(length) > self.max_body:
                await refuse(413, "payload_too_large", f"request bodies are limited to {self.max_body} bytes")
            else:
                await self.app(scope, receive, send_hardened)
        except Exception:
            # Last line of defence: one generic line, no request data, no token, no traceback to the client.
            logger.error("unhandled error on %s %s (request %s)", scope.get("method"), scope.get("path"), request_id)
            logger.debug("unhandled error detail", exc_info=True)
            if not response_started:
                await refuse(500, "internal_error", "internal error")
        finally:
            request_peer.reset(peer)
            route = scope.get("route")
            self.observe(getattr(route, "path", "unmatched"), time.perf_counter() - started_at)


_JSON_TYPE = "application/json"


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object body of a request that says it is JSON: the one way every endpoint reads a body.

    Raises:
        Problem: 415 when ``Content-Type`` is not ``application/json`` (a form or a text body is refused before it
            is read: a browser can send those cross-site without a preflight), 413 past ``limit``, 400 when the
            body is not a JSON object.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != _JSON_TYPE:
        raise Problem(415, "unsupported_media_type", f"the request body must be sent as {_JSON_TYPE}")
    return parse_json_object(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as the streamed size passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "payload_too_large", f"request bodies are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def store_unavailable_response(request: Request) -> JSONResponse:
    """503 with ``Retry-After``: the database could not be reached, nothing was changed."""
    logger.warning("the database is unavailable (%s %s)", request.method, route_template(request.scope))
    unavailable = Problem(
        503,
        "service_unavailable",
        "the broker cannot reach its database right now; nothing was changed, retry shortly",
        headers={"Retry-After": RETRY_AFTER},
    )
    return problem_response(request, unavailable)


def _install_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
        return problem_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        status = exc.status_code
        code = _STATUS_CODES.get(status, "invalid_request" if status < 500 else "internal_error")
        if status == 404:
            detail = "no such endpoint"
        elif status == 405:
            detail = "this method is not allowed on this endpoint (the Allow header lists those that are)"
        else:
            detail = str(exc.detail) if isinstance(exc.detail, str) else "request refused"
        return problem_response(request, Problem(status, code, detail, headers=dict(exc.headers or {})))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        return problem_response(request, Problem(400, "invalid_request", "the request is malformed"))

    async def on_store_unavailable(request: Request, exc: Exception) -> Response:
        return store_unavailable_response(request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StoreUnavailable, on_store_unavailable)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


async def _summarise_denials(core: BrokerCore) -> None:
    """Write aggregation summaries when their window closes, even if no request comes to trigger it."""
    window = core.settings.audit_failure_window
    if window <= 0:
        return
    while True:
        await asyncio.sleep(max(0.05, window / 4))
        try:
            await core.flush_denials()
        except StoreUnavailable:
            logger.warning("could not write an audit summary of refused requests; will retry")


def _no_native_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry hooks off, where FastAPI has them (0.16x): they would export unhandled exceptions'
    messages and stack traces to any logger provider configured in the process — the broker logs one generic line
    for those, on purpose — and checking whether they are configured cost ~20 µs on every request."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(settings: BrokerSettings, *, core: BrokerCore | None = None) -> FastAPI:
    """Build the broker's ASGI app.

    Args:
        settings: the configuration.
        core: an already opened core (``broker serve`` and the embedded broker open it first, so errors surface
            before serving); when ``None`` the app opens its own at startup and closes it at shutdown. Either way
            the core's upkeep (key refresh, housekeeping) runs while the app serves.
    """
    from ._routes import register_routes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current: BrokerCore | None = getattr(app.state, "core", None)
        owned = current is None
        if current is None:
            current = app.state.core = await BrokerCore.open(settings)
        # Other threads (the embedded broker) schedule work here: this loop serves, and owns a SQLite store.
        app.state.loop = asyncio.get_running_loop()
        summaries = asyncio.create_task(_summarise_denials(current))
        current.start_background()
        try:
            yield
        finally:
            summaries.cancel()
            await current.stop_background()
            if owned:
                await current.close()
                app.state.core = None

    app = FastAPI(
        title="agentwrit-tools embedded broker",
        version="2.0.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
        **_no_native_telemetry(),
    )
    app.state.core = core

    def observe(endpoint: str, seconds: float) -> None:
        current = getattr(app.state, "core", None)
        if current is not None:
            current.metrics.observe_request(endpoint, seconds)

    from ._direct import DirectDispatch

    app.add_middleware(DirectDispatch, routes=app.router.routes)  # inside the hardening (added first: see _direct)
    app.add_middleware(HardeningMiddleware, max_body=settings.max_body_bytes, observe=observe)
    _install_handlers(app)
    register_routes(app, settings)
    return app
