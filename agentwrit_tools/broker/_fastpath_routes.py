"""The routes of the fast-path extensions (only with ``settings.extensions``): nonce batches and launch-token
revocation. See :mod:`._challenges` and :mod:`._launch_tasks` for what they do and why."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ._challenges import issue_challenges
from ._core import BrokerCore, principal_kind
from ._http import read_json
from ._launch_tasks import revoke_launch_tokens
from ._problems import insufficient_scope
from ._svc_admin import active_app_ceiling

__all__ = ["register_fastpath_routes"]

_PRINCIPALS = ("admin", "app")
_LAUNCH_SCOPE = {"admin": "admin:launch-tokens:*", "app": "app:launch-tokens:*"}


async def _caller(core: BrokerCore, request: Request) -> tuple[dict[str, Any], str | None]:
    """The caller's claims (an app or the operator holding its launch-token scope) and, for an app, its id."""
    path = request.url.path
    claims = await core.authenticate(
        request.headers.get("authorization"), required_scope=None, path=path, principals=_PRINCIPALS
    )
    kind = principal_kind(claims)
    if _LAUNCH_SCOPE[kind] not in claims.get("scope", ()):
        await core.record_denial(
            "scope_violation", claims=claims, detail=f"endpoint requires {_LAUNCH_SCOPE[kind]}", resource=path
        )
        raise insufficient_scope(f"this endpoint requires the scope {_LAUNCH_SCOPE[kind]}")
    return claims, (await active_app_ceiling(core, claims))[0] if kind == "app" else None


def register_fastpath_routes(app: FastAPI) -> None:
    """Attach ``POST /v1/challenges`` and ``POST /v1/launch-tokens/revoke``."""

    @app.post("/v1/challenges")
    async def challenges(request: Request) -> Response:
        core: BrokerCore = request.app.state.core
        await _caller(core, request)
        return JSONResponse(await issue_challenges(core, await read_json(request, core.settings.max_body_bytes)))

    @app.post("/v1/launch-tokens/revoke")
    async def revoke_launch(request: Request) -> Response:
        core: BrokerCore = request.app.state.core
        claims, app_id = await _caller(core, request)
        body = await read_json(request, core.settings.max_body_bytes)
        return JSONResponse(await revoke_launch_tokens(core, claims, app_id, body))
