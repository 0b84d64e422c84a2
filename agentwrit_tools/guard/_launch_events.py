"""A task's launch tokens in its trace: each one it comes to hold, and what became of them when it ended.

The launch token is the task's ceiling held by the broker; the guard's launcher fetches it ahead of the first call
and, against a broker that cannot revoke one, replaces it as it ages (see :mod:`agentwrit_tools.client._launch`).
Since it exists before any call asks for it, the trace says so: ``launch_token_issued`` when the task notices a new
one (before and after each call, and when it ends; it may have been fetched on another thread meanwhile), and
``launch_tokens_ended`` when the task ends — how many were revoked, and how many could not be and when the last
of those dies.
"""

from __future__ import annotations

from typing import Any

from ..client import LaunchEnd
from ..trace import LaunchTokenIssued, LaunchTokensEnded, Trace

__all__ = ["record_launch_end", "record_launch_tokens"]


def record_launch_tokens(trace: Trace, launcher: Any) -> None:
    """Emit ``launch_token_issued`` for every launch token the launcher created since it was last asked."""
    for issued in launcher.launch_tokens():
        trace.emit(
            LaunchTokenIssued,
            scope=tuple(launcher.ceiling),
            ttl=issued.ttl,
            expires=issued.expires,
            revocable=issued.bound,
            prefetched=issued.prefetched,
        )


def record_launch_end(trace: Trace, launcher: Any, end: LaunchEnd | None, error: BaseException | None) -> None:
    """Emit ``launch_tokens_ended`` (the revocation's outcome, or why it did not go through)."""
    record_launch_tokens(trace, launcher)
    if end is None:
        end = launcher.unrevoked()
    trace.emit(
        LaunchTokensEnded,
        scope=tuple(launcher.ceiling),
        revoked=end.revoked,
        unrevocable=end.unrevocable,
        expires=end.expires,
        error=type(error).__name__ if error is not None else None,
    )
