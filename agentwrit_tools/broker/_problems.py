"""RFC 7807 problems: how the service layer says "no" and how that becomes an HTTP response.

Service code raises :class:`Problem`; the HTTP layer turns it into ``application/problem+json`` with the
contract's fields. Keeping the status and ``error_code`` together in one object makes it impossible to send a
403 with a 401's code, and keeps FastAPI out of the service layer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

__all__ = ["Problem", "bad_request", "insufficient_scope", "not_found", "problem_body", "unauthorized"]


class Problem(Exception):
    """A refusal with its HTTP status, machine-readable code and human detail.

    Attributes:
        status: HTTP status code.
        error_code: the contract's ``error_code`` (also the suffix of ``type``).
        detail: text for humans; never a token, a secret or a foreign exception's text.
        hint: optional advice on how to fix the request.
        headers: extra response headers (``Retry-After``, ``Allow``).
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        detail: str,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error_code = error_code
        self.detail = detail
        self.hint = hint
        self.headers = headers or {}


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int, error_code: str, detail: str, *, instance: str, request_id: str, hint: str | None = None
) -> dict[str, Any]:
    """The problem document, field for field as the contract lists it."""
    body: dict[str, Any] = {
        "type": f"urn:agentwrit:error:{error_code}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
        "error_code": error_code,
        "request_id": request_id,
    }
    if hint:
        body["hint"] = hint
    return body


def bad_request(detail: str, *, hint: str | None = None) -> Problem:
    return Problem(400, "invalid_request", detail, hint=hint)


def unauthorized(detail: str = "token verification failed") -> Problem:
    return Problem(401, "unauthorized", detail)


def insufficient_scope(detail: str) -> Problem:
    return Problem(403, "insufficient_scope", detail)


def not_found(detail: str) -> Problem:
    return Problem(404, "not_found", detail)
