"""RFC 3339 timestamps, written and read without losing nanoseconds.

The audit chain hashes timestamps as text, so the format must be exactly reproducible: UTC, ``Z`` suffix and a
fixed nine-digit fraction. ``datetime`` only keeps microseconds, hence the integer-nanosecond arithmetic here.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

__all__ = ["now_ns", "parse_rfc3339_ns", "rfc3339_nano", "rfc3339_seconds"]

_NS = 1_000_000_000
_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def now_ns() -> int:
    """Wall-clock time in integer nanoseconds (the one clock every timestamp comes from)."""
    return time.time_ns()


_last_second: tuple[int, str] = (-1, "")  # the broker stamps many events per second: format each second once


def rfc3339_nano(ns: int) -> str:
    """``2026-11-28T10:32:45.123456789Z``: fixed width, so equal instants always hash equally."""
    global _last_second
    seconds, frac = divmod(ns, _NS)
    cached_second, base = _last_second
    if cached_second != seconds:
        base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, base)
    return f"{base}.{frac:09d}Z"


def rfc3339_seconds(seconds: float) -> str:
    """``2026-11-28T10:32:45Z``: what launch-token expiry, delegation and revocation times use."""
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp (any offset, up to nanoseconds) into integer nanoseconds since the epoch.

    Raises:
        ValueError: the text is not an RFC 3339 date-time.
    """
    match = _PATTERN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or "").ljust(9, "0")
    try:
        base = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError("not an RFC 3339 timestamp") from exc
    offset = 0
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        hours, minutes = int(match.group(10)), int(match.group(11))
        if hours > 23 or minutes > 59:
            raise ValueError("not an RFC 3339 timestamp")
        offset = sign * (hours * 3600 + minutes * 60)
    epoch_seconds = int(base.timestamp()) - offset
    return epoch_seconds * _NS + int(fraction or "0")
