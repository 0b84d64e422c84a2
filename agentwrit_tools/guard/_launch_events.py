"""A task's launch tokens in its trace: each one it comes to hold, and what became of them when it ended.

The launch token is the task's ceiling held by the broker; the guard's launcher fetches it ahead of the first call
and, against a broker that cannot revoke one, replaces it as it ages (see :mod:`agentwrit_tools.client._launch`).
Since it exists before any call asks for it, the trace says so: ``launch_token_issued`` when the task notices a new
one (before and after each call, and when it ends; it may have been fetched on another thread meanwhile), and
``launch_tokens_ended`` when the task ends — how many were revoked, and how many could not be and when the last
of those dies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..client import LaunchEnd
from ..trace import LaunchTokenIssued, LaunchTokensEnded, Trace

__all__ = ["end_launchers", "record_launch_tokens"]


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


def end_launchers(trace: Trace, outcomes: Sequence[tuple[Any, LaunchEnd | None, BaseException | None]]) -> None:
    """Emit one ``launch_tokens_ended`` for launchers that were just closed — each with its :class:`LaunchEnd`,
    or the error its revocation met — after the ``launch_token_issued`` of any not reported yet.

    Nothing is emitted when none of them ever held a launch token.
    """
    ended = [(launcher, end, error) for launcher, end, error in outcomes if error or launcher.holds_launch_tokens]
    if not ended:
        return
    for launcher, _, _ in ended:
        record_launch_tokens(trace, launcher)
    ends = [end if end is not None else launcher.unrevoked() for launcher, end, _ in ended]
    expiries = [end.expires for end in ends if end.expires is not None]
    errors = [type(error).__name__ for _, _, error in ended if error is not None]
    trace.emit(
        LaunchTokensEnded,
        scope=tuple(dict.fromkeys(scope for launcher, _, _ in ended for scope in launcher.ceiling)),
        revoked=sum(end.revoked for end in ends),
        unrevocable=sum(end.unrevocable for end in ends),
        expires=max(expiries) if expiries else None,
        error=errors[0] if errors else None,
    )
