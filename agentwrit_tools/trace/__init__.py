"""Trace events, sinks and the exposure report (layer 8 of the design).

Typed events for every step of a credential's life (``minted``, ``denied``, ``executed``, ``released``,
``release_failed``, ``delegated``, ``renewed``, ``revoked``, ``expired``, plus ``rejected`` and
``mint_failed`` for calls that never got a credential, ``approval_requested``/``approval_granted``/
``approval_refused`` for calls that need a person's yes first, and ``launch_token_issued``/``launch_tokens_ended``
for the task's own launch tokens); sinks that keep or ship them (list, callback, JSON
lines, Server-Sent Events); and the exposure report that turns them into the headline number — how long a
credential lives compared with the work it was minted for.

This package is plain data and depends on nothing else in agentwrit-tools, which is why the guard (and later
the pipeline) can emit into it without an import cycle.
"""

from __future__ import annotations

from ._events import (
    EVENT_TYPES,
    ApprovalGranted,
    ApprovalRefused,
    ApprovalRequested,
    Delegated,
    Denied,
    Executed,
    Expired,
    LaunchTokenIssued,
    LaunchTokensEnded,
    Minted,
    MintFailed,
    Outcome,
    Rejected,
    Released,
    ReleaseFailed,
    Renewed,
    Revoked,
    TraceEvent,
)
from ._exposure import CallExposure, ExposureReport, Stats, percentile
from ._sinks import CallbackSink, JsonLinesSink, ListSink, Sink, SseSink, event_json, format_sse
from ._trace import Clock, Trace

__all__ = [
    "EVENT_TYPES",
    "ApprovalGranted",
    "ApprovalRefused",
    "ApprovalRequested",
    "CallExposure",
    "CallbackSink",
    "Clock",
    "Delegated",
    "Denied",
    "Executed",
    "Expired",
    "ExposureReport",
    "JsonLinesSink",
    "LaunchTokenIssued",
    "LaunchTokensEnded",
    "ListSink",
    "MintFailed",
    "Minted",
    "Outcome",
    "Rejected",
    "ReleaseFailed",
    "Released",
    "Renewed",
    "Revoked",
    "Sink",
    "SseSink",
    "Stats",
    "Trace",
    "TraceEvent",
    "event_json",
    "format_sse",
    "percentile",
]
