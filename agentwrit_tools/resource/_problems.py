"""Refusals and how they are worded: RFC 7807 problem bodies and RFC 6750 ``WWW-Authenticate`` challenges.

A protected API should say "no" exactly the way the broker does (``wire-contract.md``), so one client-side error
mapping serves both: 401 ``unauthorized`` for a missing, foreign or bad token (or a key-bound token without a good
proof of possession), 403 ``insufficient_scope`` for a revoked token or one lacking the required scope, 400
``invalid_request`` for a request that cannot be checked, and 503 when the token cannot be verified at all (fail
closed). Refusals about proofs of possession challenge with the ``DPoP`` scheme of RFC 9449 (``error=
"invalid_dpop_proof"`` or ``"invalid_token"``, ``algs="EdDSA"``). Every detail here is a fixed phrase or a scope
name built from safe identifiers: none ever holds text taken from the presented token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from ..pop import ALGORITHM
from ._access import Outcome

__all__ = ["PROBLEM_CONTENT_TYPE", "Refusal", "problem_body", "problem_headers"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


def _quoted(text: str) -> str:
    """An RFC 7230 quoted-string (scopes and realms have no quotes; escaping keeps a bad realm harmless)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused, in both machine and human terms.

    Attributes:
        status: the HTTP status (400, 401, 403 or 503).
        error_code: the contract's ``error_code``, also the suffix of the problem ``type``.
        detail: a fixed human sentence (never token text, never a raw request value).
        bearer_error: the RFC 6750 ``error`` of the challenge; None when the request carried no usable
            credential (RFC 6750 then asks for a bare ``Bearer`` challenge).
        scope: the scopes the operation requires, advertised in the 403 challenge.
        reason: a short fixed phrase for the access log only (e.g. ``expired``); never sent to the caller.
        outcome: the access log's one-word classification.
        scheme: the challenge's scheme: ``Bearer``, or ``DPoP`` for a refusal about a proof of possession.
    """

    status: int
    error_code: str
    detail: str
    outcome: Outcome
    reason: str
    bearer_error: str | None = None
    scope: tuple[str, ...] = field(default=())
    scheme: str = "Bearer"

    def challenge(self, realm: str | None = None) -> str | None:
        """The ``WWW-Authenticate`` value, or None when the refusal is not about credentials (a bad parameter, 503)."""
        if self.status not in (401, 403) and not self.bearer_error:
            return None
        params: list[str] = []
        if realm:
            params.append(f"realm={_quoted(realm)}")
        if self.bearer_error:
            params.append(f"error={_quoted(self.bearer_error)}")
            params.append(f"error_description={_quoted(self.detail)}")
        if self.scope and self.bearer_error == "insufficient_scope":
            params.append(f"scope={_quoted(' '.join(self.scope))}")
        if self.scheme == "DPoP":
            params.append(f"algs={_quoted(ALGORITHM)}")
        return f"{self.scheme} " + ", ".join(params) if params else self.scheme


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # pragma: no cover - we only build known statuses
        return "Error"


def problem_body(refusal: Refusal, *, instance: str, request_id: str) -> dict[str, Any]:
    """The problem document, field for field as the broker sends it."""
    return {
        "type": f"urn:agentwrit:error:{refusal.error_code}",
        "title": _title(refusal.status),
        "status": refusal.status,
        "detail": refusal.detail,
        "instance": instance,
        "error_code": refusal.error_code,
        "request_id": request_id,
    }


def problem_headers(refusal: Refusal, *, request_id: str, realm: str | None = None) -> dict[str, str]:
    """Headers of a refusal: the challenge, ``X-Request-ID``, and ``Cache-Control: no-store`` (as the broker)."""
    headers = {"Cache-Control": "no-store", "X-Request-ID": request_id}
    challenge = refusal.challenge(realm)
    if challenge is not None:
        headers["WWW-Authenticate"] = challenge
    return headers


# ---- the refusals, one constructor each, so a status never travels with the wrong code --------------------


def missing_credentials() -> Refusal:
    return Refusal(401, "unauthorized", "missing Authorization header", "unauthorized", "missing header")


def not_bearer() -> Refusal:
    return Refusal(
        401, "unauthorized", "the Authorization header must use the Bearer or DPoP scheme", "unauthorized", "not bearer"
    )


def proof_refused(reason: str, detail: str) -> Refusal:
    """A key-bound token came without an acceptable proof (missing, malformed, wrong key/method/URL, stale,
    replayed…): 401 with a ``DPoP`` challenge."""
    return Refusal(
        401, "unauthorized", detail, "unauthorized", f"dpop {reason}", bearer_error="invalid_dpop_proof", scheme="DPoP"
    )


def bound_token_as_bearer() -> Refusal:
    """A key-bound token sent as a plain bearer token: whoever sends it that way cannot be its holder."""
    return Refusal(
        401,
        "unauthorized",
        "this token is bound to a key: present it with the DPoP scheme and a proof",
        "unauthorized",
        "dpop bound token as bearer",
        bearer_error="invalid_token",
        scheme="DPoP",
    )


def unbound_token(required: bool) -> Refusal:
    """A bearer token where a key-bound one is needed (the resource demands it, or it came with the DPoP scheme)."""
    detail = (
        "this resource accepts only key-bound tokens (proof of possession)"
        if required
        else "a token presented with the DPoP scheme must be key-bound"
    )
    return Refusal(
        401, "unauthorized", detail, "unauthorized", "dpop unbound token", bearer_error="invalid_token", scheme="DPoP"
    )


def several_credentials() -> Refusal:
    return Refusal(
        400,
        "invalid_request",
        "the request must carry exactly one Authorization header",
        "invalid_request",
        "several authorization headers",
        bearer_error="invalid_request",
    )


def invalid_token(reason: str) -> Refusal:
    return Refusal(
        401, "unauthorized", "token verification failed", "unauthorized", reason, bearer_error="invalid_token"
    )


def revoked(reason: str) -> Refusal:
    return Refusal(
        403, "insufficient_scope", "token has been revoked", "revoked", reason, bearer_error="insufficient_scope"
    )


def lacking(required: Sequence[str], missing: Sequence[str]) -> Refusal:
    noun = "scope" if len(missing) == 1 else "scopes"
    return Refusal(
        403,
        "insufficient_scope",
        f"this endpoint requires the {noun} {' '.join(missing)}",
        "insufficient_scope",
        "scope not held",
        bearer_error="insufficient_scope",
        scope=tuple(required),
    )


def no_rule() -> Refusal:
    return Refusal(
        403,
        "insufficient_scope",
        "no access rule matches this request",
        "insufficient_scope",
        "no rule",
        bearer_error="insufficient_scope",
    )


def bad_parameter(detail: str, reason: str) -> Refusal:
    return Refusal(400, "invalid_request", detail, "invalid_request", reason)


def unavailable(reason: str) -> Refusal:
    return Refusal(
        503,
        "verification_unavailable",
        "the token cannot be verified right now; try again later",
        "unavailable",
        reason,
    )
