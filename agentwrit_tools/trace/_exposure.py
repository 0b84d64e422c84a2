"""The exposure report: how long each credential lived compared with the work it was minted for.

Per credential (from the trace alone):

* window = release - mint, where *mint* is when the mint returned and *release* is when the release returned.
  Both ends are measured client-side, so the window slightly over-states the token's life at the broker
  (by up to one release round trip) and never under-states it. A credential whose release failed lives until
  its ``exp``: its window is ``exp - mint`` (wall clock), and it is flagged.
* run time = how long the tool body ran.
* overhang = window - run time: the time the credential was alive but not working.
* ratio = window / run time: the headline number (1.0 would be a credential that lives exactly as long as the
  work).

The summary gives p50, p95 and max of each (linear interpolation between ranks, like numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._events import Denied, Executed, Expired, Minted, MintFailed, Rejected, Released, ReleaseFailed, TraceEvent

__all__ = ["CallExposure", "ExposureReport", "Stats", "percentile"]


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0 to 100) of ``values`` by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Stats:
    """p50, p95 and max of one measure (NaN when there was nothing to measure)."""

    count: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stats:
        kept = [v for v in values if v is not None and not math.isnan(v)]
        return cls(len(kept), percentile(kept, 50), percentile(kept, 95), max(kept) if kept else math.nan)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "p50": _num(self.p50), "p95": _num(self.p95), "max": _num(self.max)}


@dataclass(frozen=True, slots=True)
class CallExposure:
    """One credential's life, in seconds (monotonic marks, except ``exp`` which is Unix time).

    Attributes:
        released: False when the release failed: then ``window`` runs to ``exp``.
        run_time: None when the body never ran (e.g. a credential released after a scope mismatch).
        overhang: ``window - run_time`` (None without a run time).
        ratio: ``window / run_time`` (None without a positive run time).
    """

    call_id: str | None
    tool: str | None
    scope: tuple[str, ...]
    jti: str | None
    agent_id: str | None
    minted_at: float
    started: float | None
    ended: float | None
    released_at: float | None
    exp: int
    released: bool
    outcome: str | None
    window: float
    run_time: float | None
    overhang: float | None
    ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def _call(minted: Minted, executed: Executed | None, end: Released | ReleaseFailed | Expired | None) -> CallExposure:
    if isinstance(end, Released):
        window = end.at - minted.at
        released_at: float | None = end.at
    else:
        window = max(0.0, minted.exp - minted.time)
        released_at = None
    run_time = executed.run_time if executed is not None else None
    overhang = window - run_time if run_time is not None else None
    ratio = window / run_time if run_time else None
    return CallExposure(
        call_id=minted.call_id,
        tool=minted.tool,
        scope=minted.scope,
        jti=minted.jti,
        agent_id=minted.agent_id,
        minted_at=minted.at,
        started=executed.started if executed is not None else None,
        ended=executed.ended if executed is not None else None,
        released_at=released_at,
        exp=minted.exp,
        released=isinstance(end, Released),
        outcome=executed.outcome if executed is not None else None,
        window=window,
        run_time=run_time,
        overhang=overhang,
        ratio=ratio,
    )


@dataclass(frozen=True, slots=True)
class ExposureReport:
    """Exposure of every credential a trace saw, plus counts of calls that minted nothing.

    Build it with :meth:`from_events` (``task.exposure()`` does).
    """

    calls: tuple[CallExposure, ...]
    denied: int
    rejected: int
    mint_failed: int

    @classmethod
    def from_events(cls, events: Iterable[TraceEvent]) -> ExposureReport:
        """Pair each ``minted`` event with its ``executed`` and its last end (by jti).

        The end is ``released``, or ``release_failed``/``expired`` (then the window runs to ``exp``).
        """
        minted: dict[str, Minted] = {}
        executed: dict[str, Executed] = {}
        ends: dict[str, Released | ReleaseFailed | Expired] = {}
        counts = {"denied": 0, "rejected": 0, "mint_failed": 0}
        for event in events:
            if isinstance(event, Minted) and event.jti:
                minted[event.jti] = event
            elif isinstance(event, Executed) and event.jti:
                executed[event.jti] = event
            elif isinstance(event, (Released, ReleaseFailed, Expired)) and event.jti:
                ends[event.jti] = event
            elif isinstance(event, (Denied, Rejected, MintFailed)):
                counts[event.type] += 1
        calls = tuple(_call(m, executed.get(jti), ends.get(jti)) for jti, m in minted.items())
        return cls(calls, counts["denied"], counts["rejected"], counts["mint_failed"])

    @property
    def window(self) -> Stats:
        return Stats.of(c.window for c in self.calls)

    @property
    def run_time(self) -> Stats:
        return Stats.of(c.run_time for c in self.calls)

    @property
    def overhang(self) -> Stats:
        return Stats.of(c.overhang for c in self.calls)

    @property
    def ratio(self) -> Stats:
        return Stats.of(c.ratio for c in self.calls)

    @property
    def unreleased(self) -> tuple[CallExposure, ...]:
        """Credentials whose release failed: they live until their ``exp``."""
        return tuple(c for c in self.calls if not c.released)

    def summary(self) -> dict[str, Any]:
        """Counts and p50/p95/max of window, run time, overhang and ratio (seconds; ratio unitless)."""
        return {
            "credentials": len(self.calls),
            "unreleased": len(self.unreleased),
            "denied": self.denied,
            "rejected": self.rejected,
            "mint_failed": self.mint_failed,
            "window": self.window.to_dict(),
            "run_time": self.run_time.to_dict(),
            "overhang": self.overhang.to_dict(),
            "ratio": self.ratio.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: ``{"calls": [...], "summary": {...}}``."""
        return {"calls": [c.to_dict() for c in self.calls], "summary": self.summary()}

    def table(self) -> str:
        """A plain-text table: one row per credential, then p50/p95/max."""
        from ._table import plain_table

        return plain_table(self)

    def print(self, file: Any = None, *, rich: bool | None = None) -> None:
        """Print the table. ``rich=None`` uses rich when it is installed and the output is a terminal."""
        from ._table import print_report

        print_report(self, file=file, use_rich=rich)
