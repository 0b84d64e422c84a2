"""Direct dispatch: a request for one of the broker's fixed routes goes straight to its handler.

Every handler of the broker is ``async def handler(request: Request) -> Response`` and reads what it needs itself
(:func:`~._http.read_json` for bodies), so FastAPI's per-request machinery — dependency solving, the exception
middleware, the exit stack, matching each route's regex in turn — does nothing for them but cost time: about
100 µs of the broker's CPU per request, a sixth of a registration and more than half of a release. This ASGI
layer sits just inside :class:`~._http.HardeningMiddleware` (so request ids, security headers, body limits, the
peer, metrics and the last-resort 500 apply exactly as before) and, for a request whose method and path are
exactly a route's (no path parameters), calls that route's handler itself:

* the route is recorded in the scope as the router would (``instance`` in problems, the metrics label);
* a :class:`~._problems.Problem` raised by the handler becomes the same problem response as through FastAPI's
  exception handler (:func:`~._http.problem_response`), and a database that cannot be reached the same 503
  (:func:`~._http.store_unavailable_response`);
* anything else — other methods, paths with parameters (``/v1/admin/apps/{app_id}``), unknown paths — goes to the
  FastAPI app unchanged, which answers 404/405 and runs the parameterised routes.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request

from ._http import ASGIApp, Receive, Scope, Send, problem_response, store_unavailable_response
from ._problems import Problem
from ._store import StoreUnavailable

__all__ = ["DirectDispatch"]


def _direct_routes(routes: Iterable[Any]) -> dict[tuple[str, str], APIRoute]:
    """``(method, path)`` → route, for every route without path parameters whose handler takes only the request."""
    table: dict[tuple[str, str], APIRoute] = {}
    for route in routes:
        if not isinstance(route, APIRoute) or route.param_convertors:
            continue
        if list(inspect.signature(route.endpoint).parameters) != ["request"]:
            continue
        for method in route.methods or ():
            table.setdefault((method, route.path), route)
    return table


class DirectDispatch:
    """See the module docstring. ``app`` is the rest of the stack (FastAPI's exception middleware and router)."""

    def __init__(self, app: ASGIApp, *, routes: Any) -> None:
        self.app = app
        self._routes = routes  # the app's route list, read once on the first request (routes are added after this)
        self._table: dict[tuple[str, str], APIRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        table = self._table
        if table is None:
            table = self._table = _direct_routes(self._routes)
        route = table.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if route is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Problem as problem:
            response = problem_response(request, problem)
        except StoreUnavailable:
            response = store_unavailable_response(request)
        await response(scope, receive, send)
