"""A FastAPI dependency that returns the caller's verified claims, or answers 401/403/400/503 as problem JSON.

::

    from fastapi import Depends, FastAPI
    from agentwrit_tools import AsyncVerifier, Claims
    from agentwrit_tools.resource.fastapi import Requires, install

    app = FastAPI()
    install(app)  # problem+json bodies for refusals
    verifier = AsyncVerifier("http://127.0.0.1:8080")
    read_record = Requires(verifier, "read:records:{patient_id}")

    @app.get("/records/{patient_id}")
    async def record(patient_id: str, claims: Claims = Depends(read_record)) -> dict: ...

The template is filled from the route's *raw* path parameters (and the query string), before FastAPI converts
them, so declare such parameters as ``str``: with ``int``, ``/records/007`` would need ``read:records:007`` while
the handler reads record 7.

Without :func:`install`, refusals still carry the right status and ``WWW-Authenticate`` header (they are
``HTTPException`` subclasses) but FastAPI's default ``{"detail": ...}`` body. The dependency also declares HTTP
Bearer security, so the OpenAPI docs offer an "Authorize" button; the header itself is read and checked here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..client import Claims
from . import CLAIMS_KEY
from ._access import DEFAULT, AccessLog
from ._edges import AccessRefused, AnyVerifier, adecide
from ._gate import Gate
from ._problems import PROBLEM_CONTENT_TYPE
from ._proof import Possession, ProofRules
from ._request import Requirement, Source
from .asgi import facts_from_scope

__all__ = ["ProblemHTTPException", "Requires", "exception_handlers", "install", "problem_response"]

_bearer = HTTPBearer(auto_error=False, description="An AgentWrit agent token")


class ProblemHTTPException(HTTPException):
    """A refusal on its way to the problem handler; ``refused`` holds the details and the access record."""

    def __init__(self, refused: AccessRefused) -> None:
        super().__init__(refused.status_code, detail=refused.refusal.detail, headers=refused.headers())
        self.refused = refused


class Requires:
    """A dependency: the verified :class:`~agentwrit_tools.client.Claims` of a token covering ``scopes``.

    Args:
        verifier: an ``AsyncVerifier``/``AsyncBroker``, or a ``Verifier``/``Broker`` (then run in a worker thread).
        scopes: template(s) such as ``read:records:{patient_id}``, or a :class:`Requirement`.
        sources: where template values may come from (``path``, ``query``).
        access_log: hooks for access records (default: the logging hook; None: none).
        realm: the ``realm`` of ``WWW-Authenticate`` challenges.
        possession: proofs of possession: ``"auto"`` (a key-bound token needs one), ``"required"`` (only key-bound
            tokens, each with its proof) or :class:`~agentwrit_tools.resource.ProofRules`.
    """

    def __init__(
        self,
        verifier: AnyVerifier,
        scopes: str | Sequence[str] | Requirement,
        *,
        sources: Sequence[Source] = ("path", "query"),
        access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
        realm: str | None = None,
        possession: ProofRules | Possession = "auto",
    ) -> None:
        requirement = scopes if isinstance(scopes, Requirement) else Requirement(scopes, sources=sources)
        self.verifier = verifier
        self.gate = Gate(requirement, access_log=access_log, realm=realm, possession=possession)

    def __repr__(self) -> str:
        return f"Requires({[t.template for t in self.gate.requirement.templates]!r})"

    async def __call__(
        self,
        request: Request,
        _declared: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Claims:
        verdict = await adecide(self.verifier, self.gate, facts_from_scope(request.scope))
        if verdict.refusal is not None or verdict.claims is None:
            raise ProblemHTTPException(AccessRefused(verdict, realm=self.gate.realm))
        setattr(request.state, CLAIMS_KEY, verdict.claims)
        return verdict.claims


def problem_response(refused: AccessRefused) -> Response:
    """The RFC 7807 response for a refusal."""
    return JSONResponse(
        refused.problem(), status_code=refused.status_code, headers=refused.headers(), media_type=PROBLEM_CONTENT_TYPE
    )


async def _handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ProblemHTTPException):
        return problem_response(exc.refused)
    if isinstance(exc, AccessRefused):  # raised by a handler that called require()/arequire() itself
        return problem_response(exc)
    raise exc  # pragma: no cover - only registered for the two classes above


exception_handlers: dict[Any, Any] = {ProblemHTTPException: _handle, AccessRefused: _handle}
"""For ``FastAPI(exception_handlers=...)``, as an alternative to :func:`install`."""


def install(app: FastAPI) -> None:
    """Answer refusals with problem JSON: from :class:`Requires`, and ``AccessRefused`` raised in handlers."""
    for kind, handler in exception_handlers.items():
        app.add_exception_handler(kind, handler)
