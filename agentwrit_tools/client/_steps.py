"""The vocabulary between the I/O-free protocol core and the two thin I/O edges.

Every multi-step operation (mint, verify, renew…) is written once, as a generator *flow* that yields steps and
receives their results. ``Broker`` and ``AsyncBroker`` each have one small driver loop that performs the steps
with httpx (or sleeps, or takes a lock). This keeps sync and async behaviour identical by construction and
lets the unit tests drive every flow with canned responses and no sockets.

Steps and what the driver sends back into the flow:

- :class:`Call` → a :class:`Response` (any status), or a :class:`~agentwrit_tools.errors.BrokerUnavailable`
  thrown into the flow when no answer came back.
- :class:`Sleep` → ``None`` after the pause (``time.sleep`` or ``anyio.sleep``).
- :class:`Exclusive` → the return value of the inner flow, which the driver ran while holding the lock named by
  ``key`` (``threading.Lock`` or ``anyio.Lock``): this is how "100 concurrent mints, one app login" works.
"""

from __future__ import annotations

import json as _json
from collections.abc import Generator, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["Call", "Exclusive", "Flow", "Response", "Sleep", "Step", "Trips"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request to the broker, described without doing it.

    Attributes:
        method: HTTP method.
        path: path under the broker URL (``/v1/register``); never carries a secret.
        body: JSON body or None. Hidden from repr: it may hold a secret or a token.
        params: query parameters.
        bearer: token for ``Authorization: Bearer``; hidden from repr.
        idempotent: safe to resend after an ambiguous transport failure (GETs, validate).
    """

    method: str
    path: str
    body: Any = field(default=None, repr=False)
    params: Mapping[str, str | int] | None = None
    bearer: str | None = field(default=None, repr=False)
    idempotent: bool = False

    def headers(self) -> dict[str, str]:
        """Per-call headers (the driver adds the shared ones)."""
        return {"Authorization": f"Bearer {self.bearer}"} if self.bearer is not None else {}

    def content(self) -> bytes | None:
        """The encoded body, compact, or None when there is none."""
        if self.body is None:
            return None
        return _json.dumps(self.body, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers (lower-case names) and raw body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = field(default=b"", repr=False)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause before the next step (retry backoff, ``Retry-After``)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Exclusive(Generic[T]):
    """Run ``flow`` while holding the driver's lock named ``key`` (single-flight refreshes)."""

    key: Hashable
    flow: Generator[Step, Any, T] = field(repr=False)


@dataclass(slots=True)
class Trips:
    """Round trips a driver made for one flow (every :class:`Call` sent, resends included): the figure that says
    what a credential cost on its caller's path, and what was moved off it."""

    count: int = 0


Step = Call | Sleep | Exclusive[Any]
Flow = Generator[Step, Any, T]
