"""Sending one call the contract's way: retries, ``Retry-After``, error mapping and body parsing — no I/O.

:func:`send` is the only place that decides whether to resend a call, so the retry rules are in one spot:

- transport failure before the request left (connect refused, DNS): resend any call — nothing reached the broker;
- transport failure after it left (timeout, reset): resend only idempotent calls (GETs, validate), because a
  register or a release may already have happened;
- 429: wait ``Retry-After`` and resend, when the wait is short enough; otherwise raise :class:`RateLimited`;
- everything else is final. 5xx is not retried: the broker answered, and the request may have taken effect.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import (
    BrokerError,
    BrokerUnavailable,
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    NotFound,
    ProblemError,
    ProtocolError,
    RateLimited,
    ScopeViolation,
    ServerError,
    Unauthorized,
    redact,
)
from ._models import Problem
from ._steps import Call, Flow, Response, Sleep

__all__ = ["RetryPolicy", "error_for", "parse", "parse_retry_after", "send"]

M = TypeVar("M", bound=BaseModel)

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds on resending.

    Attributes:
        transport_retries: extra attempts after a transport failure (0 disables).
        backoff: first backoff in seconds; doubles per attempt, with full jitter.
        backoff_max: cap of one backoff.
        rate_limit_retries: extra attempts after a 429.
        max_retry_after: longest ``Retry-After`` we are willing to wait; a longer one raises at once.
    """

    transport_retries: int = 2
    backoff: float = 0.05
    backoff_max: float = 1.0
    rate_limit_retries: int = 2
    max_retry_after: float = 5.0

    def transport_delay(self, call: Call, error: BrokerUnavailable, attempt: int) -> float | None:
        """Seconds to wait before resending after a transport failure, or None to give up."""
        if attempt >= self.transport_retries or (error.sent and not call.idempotent):
            return None
        ceiling = min(self.backoff_max, self.backoff * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def rate_limit_delay(self, retry_after: float | None, attempt: int) -> float | None:
        """Seconds to wait before resending after a 429, or None to give up."""
        if attempt >= self.rate_limit_retries:
            return None
        wait = self.backoff if retry_after is None else retry_after
        return wait if wait <= self.max_retry_after else None


def send(call: Call, policy: RetryPolicy, *, accept: Collection[int] = ()) -> Flow[Response]:
    """Yield ``call`` (resending per ``policy``) and return its 2xx (or ``accept``-ed) response.

    Raises:
        BrokerUnavailable: no answer, retries spent or not allowed.
        ProblemError: an error status (typed by status and ``error_code``).
        ProtocolError: a status the contract never uses here (e.g. a redirect).
    """
    transport_attempt = limit_attempt = 0
    while True:
        try:
            response: Response = yield call
        except BrokerUnavailable as exc:
            delay = policy.transport_delay(call, exc, transport_attempt)
            if delay is None:
                raise
            transport_attempt += 1
            yield Sleep(delay)
            continue
        if response.status in accept or 200 <= response.status < 300:
            return response
        if response.status == 429:
            wait = policy.rate_limit_delay(parse_retry_after(response), limit_attempt)
            if wait is not None:
                limit_attempt += 1
                yield Sleep(wait)
                continue
        raise error_for(call, response)


def parse_retry_after(response: Response, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or HTTP-date), None when absent or unreadable."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_SECRET_FIELDS = ("client_secret", "secret", "launch_token", "token", "launch_tokens")


def _sent_secrets(call: Call) -> list[str]:
    """The secrets this call carried (bearer, secret-bearing body fields): never to be echoed back to a log."""
    found = [call.bearer] if call.bearer else []
    if isinstance(call.body, dict):
        for key, value in call.body.items():
            if key in _SECRET_FIELDS:
                found += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    return found


def _problem(call: Call, response: Response) -> Problem:
    """The problem body, or one synthesized from the status when the body is not a problem."""
    data: Any = None
    try:
        data = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        data = None
    title = _TITLES.get(response.status, f"HTTP {response.status}")
    if isinstance(data, dict) and ("error_code" in data or "type" in data):
        try:
            found = Problem.model_validate({**data, "status": response.status})
        except ValidationError:
            found = None
        if found is not None:
            return found.model_copy(
                update={
                    "title": found.title or title,
                    "instance": found.instance or call.path,
                    "detail": redact(found.detail, _sent_secrets(call)),
                    "hint": redact(found.hint, _sent_secrets(call)) if found.hint else found.hint,
                    "request_id": found.request_id or response.request_id,
                }
            )
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return Problem(
        title=title,
        status=response.status,
        detail=f"the answer was not a problem document ({kind}, {len(response.content)} bytes)",
        instance=call.path,
        request_id=response.request_id,
    )


def error_for(call: Call, response: Response) -> BrokerError:
    """Map an error response to the typed exception callers catch."""
    where = {"method": call.method, "path": call.path}
    status = response.status
    if status < 400:
        return ProtocolError(f"{call.method} {call.path} -> unexpected status {status}", **where)
    problem = _problem(call, response)
    code = problem.error_code or ""
    if status == 429:
        return RateLimited(problem, retry_after=parse_retry_after(response), **where)
    if status == 400:
        return InvalidRequest(problem, **where)
    if status == 401:
        return Unauthorized(problem, **where)
    if status == 403:
        if code == "scope_violation" or (code == "forbidden" and call.path.endswith("/launch-tokens")):
            return ScopeViolation(problem, **where)
        if code == "insufficient_scope":
            return InsufficientScope(problem, **where)
        return Forbidden(problem, **where)
    if status == 404:
        return NotFound(problem, **where)
    if status >= 500:
        return ServerError(problem, **where)
    return ProblemError(problem, **where)


def parse(model: type[M], call: Call, response: Response) -> M:
    """Decode and validate a success body; a body that breaks the contract raises :class:`ProtocolError`.

    The message names the offending fields but never their values (they may be tokens).
    """
    where = {"method": call.method, "path": call.path}
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise ProtocolError(
            f"{call.method} {call.path} -> {response.status} with a body that is not JSON ({kind})", **where
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "<body>" for err in exc.errors()})
        raise ProtocolError(
            f"{call.method} {call.path} -> {response.status} with unexpected fields: {', '.join(fields)}", **where
        ) from None
