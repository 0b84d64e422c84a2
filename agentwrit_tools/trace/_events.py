"""Typed trace events: what happened to which credential, and when.

Every event is a frozen dataclass with a fixed ``type`` (``minted``, ``denied``, ``executed``…). It carries two
clocks on purpose: ``at`` is monotonic seconds (for durations; immune to wall-clock jumps) and ``time`` is Unix
wall time (for humans and for comparing with a token's ``exp``). Events name credentials by ``jti`` and
``agent_id`` only: a token is never part of an event, so any sink may be shipped anywhere.

Events are plain data with no dependency on the guard or the client, so the pipeline, the adapters and the
resource helpers can emit the same vocabulary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

__all__ = [
    "EVENT_TYPES",
    "ApprovalGranted",
    "ApprovalRefused",
    "ApprovalRequested",
    "Delegated",
    "Denied",
    "Executed",
    "Expired",
    "LaunchTokenIssued",
    "LaunchTokensEnded",
    "MintFailed",
    "Minted",
    "Outcome",
    "Rejected",
    "ReleaseFailed",
    "Released",
    "Renewed",
    "Revoked",
    "TraceEvent",
]

Outcome = Literal["ok", "error", "timeout", "cancelled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEvent:
    """Fields every event has.

    Attributes:
        seq: position in its trace (1, 2, …), so interleaved sinks can be re-ordered.
        at: monotonic seconds when it happened (only differences are meaningful).
        time: Unix wall-clock seconds when it happened.
        task_id: the task it belongs to.
        orch_id: the orchestrator of that task.
        call_id: the tool call it belongs to (None for task-level events).
        tool: the tool's name (None for task-level events).
        scope: the scopes involved (the rendered scopes of a call, a delegated scope…).
        jti: the credential's token id, when there is one.
        agent_id: the credential's SPIFFE ID, when there is one.
    """

    type: ClassVar[str] = "event"

    seq: int
    at: float
    time: float
    task_id: str
    orch_id: str
    call_id: str | None = None
    tool: str | None = None
    scope: tuple[str, ...] = ()
    jti: str | None = None
    agent_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with ``type`` first; tuples become lists."""
        out: dict[str, Any] = {"type": self.type}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            out[item.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Minted(TraceEvent):
    """A credential now exists. ``at`` is when the mint returned: the start of the exposure window.

    Attributes:
        ttl: the lifetime asked for, in seconds.
        exp: the verified ``exp`` claim (Unix seconds): when the token dies if nobody releases it.
        mint_time: seconds the mint took (launch token, challenge, registration, verification).
        round_trips: requests the mint made on the call's path (None when the minter does not count them).
        prefetched: what the mint did not fetch on the call's path because it was fetched ahead (``nonce``,
            ``launch_token``).
    """

    type: ClassVar[str] = "minted"

    ttl: int
    exp: int
    mint_time: float
    round_trips: int | None = None
    prefetched: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Denied(TraceEvent):
    """A call was refused before its body ran; nothing with the requested authority exists.

    Attributes:
        reason: a fixed code (``unsafe_argument``, ``outside_ceiling``, ``budget_exhausted``, ``unknown_tool``,
            ``broker_refused``, ``scope_mismatch``).
        missing: the required scopes the ceiling does not cover (for ``outside_ceiling``).
        message: the text the model was given.
    """

    type: ClassVar[str] = "denied"

    reason: str
    missing: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected(TraceEvent):
    """The model's arguments did not fit the tool's schema; nothing was rendered or minted.

    Attributes:
        message: the text the model was given.
    """

    type: ClassVar[str] = "rejected"

    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MintFailed(TraceEvent):
    """Minting failed for a reason other than authority (broker unreachable, server error…).

    Attributes:
        error: the exception's class name (never its text).
    """

    type: ClassVar[str] = "mint_failed"

    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Executed(TraceEvent):
    """The tool body ran (or was stopped) with its credential.

    Attributes:
        outcome: ``ok``, ``error``, ``timeout`` or ``cancelled``.
        started: monotonic seconds when the body was started.
        ended: monotonic seconds when it returned, raised, or was given up on.
        run_time: ``ended - started``.
        error: the exception's class name for ``error`` (never its text).
    """

    type: ClassVar[str] = "executed"

    outcome: Outcome
    started: float
    ended: float
    run_time: float
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Released(TraceEvent):
    """The credential is dead at the broker. ``at`` is when the release returned: the end of the window.

    Attributes:
        window: seconds from mint to release (the exposure window).
        already_dead: the broker said the token was already expired, revoked or released.
    """

    type: ClassVar[str] = "released"

    window: float
    already_dead: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseFailed(TraceEvent):
    """The release did not go through (broker unreachable…); the token lives until ``exp``.

    Attributes:
        exp: Unix seconds when the token dies by itself.
        error: the exception's class name (never its text).
    """

    type: ClassVar[str] = "release_failed"

    exp: int
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Delegated(TraceEvent):
    """A narrower token was delegated. ``jti``/``agent_id`` name the new token and its holder.

    Attributes:
        delegator: the SPIFFE ID of the agent that delegated.
        exp: the new token's ``exp``.
    """

    type: ClassVar[str] = "delegated"

    delegator: str
    exp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Renewed(TraceEvent):
    """A token was swapped for a fresh one (same agent and scope). ``jti`` is the new token's.

    Attributes:
        previous_jti: the token the broker revoked in the swap.
        exp: the new token's ``exp``.
    """

    type: ClassVar[str] = "renewed"

    previous_jti: str
    exp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoked(TraceEvent):
    """An operator revoked tokens.

    Attributes:
        level: ``token``, ``agent``, ``task`` or ``chain``.
        target: what was revoked at that level (a jti, a SPIFFE ID, a task id).
        count: how many tokens the broker reported revoked.
    """

    type: ClassVar[str] = "revoked"

    level: str
    target: str
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Expired(TraceEvent):
    """A credential that was never released reached its ``exp`` (recorded when it is noticed).

    Attributes:
        exp: the ``exp`` claim it died at.
    """

    type: ClassVar[str] = "expired"

    exp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested(TraceEvent):
    """A call needs a person's yes before anything is minted; the approver was asked.

    Attributes:
        approval_id: the request's id (an approval names it, and is good once).
        digest: SHA-256 of tool + canonical arguments + scopes + task: what an approval is bound to.
        expires_at: Unix seconds when the guard stops waiting.
        arguments: the validated arguments as canonical JSON — what the approver is shown (shortened past 2000
            characters here; the digest covers them whole).
    """

    type: ClassVar[str] = "approval_requested"

    approval_id: str
    digest: str
    expires_at: float
    arguments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalGranted(TraceEvent):
    """The approver said yes to exactly this call; its credential may be minted now.

    Attributes:
        approval_id: the request (and approval) id.
        digest: what was approved.
        approver: who decided.
        recorded: ``broker`` (in the broker's audit log too) or ``trace`` (the broker keeps no approval records:
            this event is the record).
    """

    type: ClassVar[str] = "approval_granted"

    approval_id: str
    digest: str
    approver: str
    recorded: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRefused(TraceEvent):
    """No approval for this call: nothing is minted and the call is denied.

    Attributes:
        approval_id: the request's id.
        digest: what was asked about.
        reason: ``denied``, ``timeout``, ``arguments_changed`` (the approval was for another call), ``expired``,
            ``replayed``, ``no_approver``, ``approver_failed`` or ``not_recorded`` (a yes the broker's audit log
            could not take).
        approver: who answered, when known.
        recorded: ``broker``, ``trace`` or ``failed``.
    """

    type: ClassVar[str] = "approval_refused"

    approval_id: str
    digest: str
    reason: str
    approver: str = ""
    recorded: str = "trace"


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchTokenIssued(TraceEvent):
    """The task holds a new launch token: its ceiling (``scope``), held by the broker. Recorded when the task
    notices it (at its next call, or when it ends), which for one fetched ahead is after it was fetched.

    Attributes:
        ttl: the lifetime of the credentials it grants, in seconds.
        expires: Unix seconds when the broker stops accepting it.
        revocable: the broker bound it to the task, so the task's end (or a task-level revocation) revokes it;
            False against a broker without that extension, where it lives until ``expires`` (kept short).
        prefetched: fetched off every call's path (ahead of the first call, or replacing an aging one).
    """

    type: ClassVar[str] = "launch_token_issued"

    ttl: int
    expires: float
    revocable: bool
    prefetched: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchTokensEnded(TraceEvent):
    """The task ended, and so did what its launch tokens could still do.

    Attributes:
        revoked: how many the broker revoked now (unused authority that died with the task).
        unrevocable: how many could not be revoked (a broker without the extension) and are still alive.
        expires: Unix seconds when the last of those dies on its own (None when none is left).
        error: the exception's class name when the revocation did not go through (never its text).
    """

    type: ClassVar[str] = "launch_tokens_ended"

    revoked: int = 0
    unrevocable: int = 0
    expires: float | None = None
    error: str | None = None


EVENT_TYPES: dict[str, type[TraceEvent]] = {
    cls.type: cls
    for cls in (
        ApprovalRequested,
        ApprovalGranted,
        ApprovalRefused,
        Minted,
        Denied,
        Rejected,
        MintFailed,
        Executed,
        Released,
        ReleaseFailed,
        Delegated,
        Renewed,
        Revoked,
        Expired,
        LaunchTokenIssued,
        LaunchTokensEnded,
    )
}
"""Every event class by its ``type``."""
