"""Refusals of requests that proved nothing, aggregated per source and window so they cannot flood the audit.

Every refusal is audited, but a refusal of someone who presented no valid credential (a wrong secret, a forged or
revoked bearer, an unknown launch token) costs the requester nothing, so without a bound anyone who can reach
the port could grow the hash-chained audit log — which is never purged — one row per request.

The rule: the first such refusal of each kind from a source opens a *window* and is recorded as it happens, in
full. Further refusals of that kind from that source within ``window`` seconds are counted, not written; when the
window closes, one summary event of the same type records how many there were and the first and last time. The
chain stays append-only and verifiable, every refusal is accounted for, and what a stranger can add is bounded by
the number of windows (:data:`MAX_WINDOWS` sources at once, the rest share one ``"other sources"`` window) rather
than by the number of requests.

The *source* is the peer of the connection (or the client a trusted proxy names; see ``forwarded_allow_ips``),
published for the request by the HTTP layer in :data:`request_peer`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from ._timefmt import rfc3339_nano

__all__ = ["MAX_WINDOWS", "OTHER_SOURCES", "DenialWindows", "Window", "peer_of", "request_peer"]

MAX_WINDOWS = 1024
OTHER_SOURCES = "other sources"

request_peer: ContextVar[str] = ContextVar("agentwrit_request_peer", default="unknown")
"""The client address of the request being served (set by the HTTP layer for each request, see :func:`peer_of`)."""


def peer_of(client: object) -> str:
    """The client address of an ASGI scope's ``client``, normalised; ``unknown`` when it is not an IP address.

    Behind a trusted proxy the address comes from ``X-Forwarded-For``: whatever the proxy let through is never
    written to the audit or used as a rate-limit key unless it is an address.
    """
    host = client[0] if isinstance(client, (tuple, list)) and client else None
    try:
        return str(ipaddress.ip_address(str(host)))
    except ValueError:
        return "unknown"


@dataclass(slots=True)
class Window:
    """Refusals of one kind from one source since ``opened`` (monotonic seconds).

    Attributes:
        suppressed: refusals counted but not written (the first one of the window was written).
        first_ns / last_ns: wall-clock nanoseconds of the first and last of them.
    """

    source: str
    event_type: str
    opened: float
    suppressed: int = 0
    first_ns: int = 0
    last_ns: int = 0

    def summary(self) -> str:
        """The detail of the window's summary event (every part written by the broker, none by the requester)."""
        return (
            f"{self.suppressed} more {self.event_type} from {self.source} between "
            f"{rfc3339_nano(self.first_ns)} and {rfc3339_nano(self.last_ns)} (aggregated)"
        )


class DenialWindows:
    """Decides which anonymous refusals are written now and which go into a window's summary.

    Args:
        window: seconds a window stays open; ``0`` writes every refusal (no aggregation).
        max_windows: open windows at most; refusals from further sources share one window per kind.
        clock: monotonic seconds; wall: wall-clock nanoseconds (both injectable for tests).
    """

    def __init__(
        self,
        window: float,
        *,
        max_windows: int = MAX_WINDOWS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], int] = time.time_ns,
    ) -> None:
        self.window = window
        self._max = max_windows
        self._clock = clock
        self._wall = wall
        self._open: dict[tuple[str, str], Window] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, source: str, event_type: str) -> bool:
        """True when this refusal is to be written now; False when it was counted into an open window.

        Call :meth:`close` first and write what it returns: a window that is over is replaced here.
        """
        if self.window <= 0:
            return True
        now = self._clock()
        key = (source, event_type)
        if key not in self._open and len(self._open) >= self._max:
            key = (OTHER_SOURCES, event_type)
        current = self._open.get(key)
        if current is None or now - current.opened >= self.window:
            self._open.pop(key, None)  # re-inserted last: the dict stays in the order windows opened
            self._open[key] = Window(key[0], event_type, now)
            return True
        stamp = self._wall()
        if not current.suppressed:
            current.first_ns = stamp
        current.suppressed += 1
        current.last_ns = stamp
        return False

    def close(self, *, everything: bool = False) -> list[Window]:
        """Remove and return the windows that are over (all of them with ``everything``), oldest first.

        Windows that counted nothing are dropped silently: their one refusal is already in the log.
        """
        now = self._clock()
        closed: list[Window] = []
        for key, win in list(self._open.items()):
            if not everything and now - win.opened < self.window:
                break  # the rest opened later
            closed.append(self._open.pop(key))
        return [win for win in closed if win.suppressed]
