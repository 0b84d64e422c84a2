"""A Flask view decorator: verify the bearer token before the view runs; claims in ``flask.g``.

::

    from flask import Flask
    from agentwrit_tools import Verifier
    from agentwrit_tools.resource.flask import current_claims, requires

    app = Flask(__name__)
    verifier = Verifier("http://127.0.0.1:8080")

    @app.get("/customers/<customer_id>/tickets")
    @requires(verifier, "read:tickets:{customer_id}")  # below the route decorator, so the route gets the check
    def tickets(customer_id: str):
        claims = current_claims()  # also flask.g.agentwrit_claims
        ...

The template is filled from the view arguments (after Flask's converters, so ``<int:id>`` gives digits) and the
query string. Refusals are RFC 7807 problem JSON with the broker's codes; async views work too (Flask runs each
in its own event loop, so the synchronous verifier is called directly).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import flask

from ..client import Claims
from ..errors import ConfigurationError
from . import CLAIMS_KEY
from ._access import DEFAULT, AccessLog
from ._edges import SyncTokenVerifier, decide, is_async_verifier
from ._gate import Gate, Verdict
from ._problems import PROBLEM_CONTENT_TYPE, problem_body, problem_headers
from ._proof import Possession, ProofRules
from ._request import RequestFacts, Requirement, Source, request_id

__all__ = ["current_claims", "facts_from_request", "requires"]

F = TypeVar("F", bound=Callable[..., Any])


def facts_from_request(request: flask.Request) -> RequestFacts:
    """What a check needs from a Flask request."""
    rule = request.url_rule
    return RequestFacts(
        tuple(request.headers.getlist("Authorization")),
        path_params=dict(request.view_args or {}),
        query=tuple(request.args.items(multi=True)),
        method=request.method,
        path=request.path,
        route=rule.rule if rule is not None else "",
        request_id=request_id(request.headers.get("X-Request-ID")),
        dpop=tuple(request.headers.getlist("DPoP")),
        url=request.base_url,
    )


def current_claims() -> Claims:
    """The verified claims of the current request.

    Raises:
        LookupError: the view was not decorated with :func:`requires`.
    """
    claims = flask.g.get(CLAIMS_KEY)
    if not isinstance(claims, Claims):
        raise LookupError("no verified claims on this request: the view is not decorated with requires()")
    return claims


def _problem(verdict: Verdict, realm: str | None) -> flask.Response:
    refusal = verdict.refusal
    if refusal is None:  # pragma: no cover - only refused verdicts get here
        raise RuntimeError("not a refusal")
    record = verdict.record
    body = json.dumps(problem_body(refusal, instance=record.path, request_id=record.request_id))
    return flask.Response(
        body,
        status=refusal.status,
        headers=problem_headers(refusal, request_id=record.request_id, realm=realm),
        mimetype=PROBLEM_CONTENT_TYPE,
    )


def requires(
    verifier: SyncTokenVerifier,
    scopes: str | Sequence[str] | Requirement,
    *,
    sources: Sequence[Source] = ("path", "query"),
    access_log: AccessLog | Iterable[AccessLog] | None = DEFAULT,
    realm: str | None = None,
    possession: ProofRules | Possession = "auto",
) -> Callable[[F], F]:
    """Decorate a view so it runs only for a verified token covering ``scopes``.

    Args:
        verifier: a ``Verifier`` or ``Broker`` (Flask is synchronous).
        scopes: template(s) such as ``read:tickets:{customer_id}``, or a :class:`Requirement`.
        sources: where template values may come from (``path`` = view arguments, ``query``).
        access_log: hooks for access records (default: the logging hook; None: none).
        realm: the ``realm`` of ``WWW-Authenticate`` challenges.
        possession: proofs of possession: ``"auto"`` (a key-bound token needs one), ``"required"`` (only key-bound
            tokens, each with its proof) or :class:`~agentwrit_tools.resource.ProofRules`.

    Raises:
        ConfigurationError: ``verifier`` is asynchronous.
    """
    if is_async_verifier(verifier):
        raise ConfigurationError("Flask views need a synchronous Verifier or Broker, not an async one")
    requirement = scopes if isinstance(scopes, Requirement) else Requirement(scopes, sources=sources)
    gate = Gate(requirement, access_log=access_log, realm=realm, possession=possession)

    def check() -> flask.Response | None:
        verdict = decide(verifier, gate, facts_from_request(flask.request))
        if verdict.refusal is not None or verdict.claims is None:
            return _problem(verdict, realm)
        setattr(flask.g, CLAIMS_KEY, verdict.claims)
        return None

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_checked(*args: Any, **kwargs: Any) -> Any:
                refused = check()
                return refused if refused is not None else await view(*args, **kwargs)

            return cast(F, async_checked)

        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            refused = check()
            return refused if refused is not None else view(*args, **kwargs)

        return cast(F, checked)

    return decorate
