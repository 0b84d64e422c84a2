"""A person's yes before a dangerous call: the approval step of the per-call flow, free of I/O.

Some calls are dangerous even within a task's ceiling — writing a prescription, refunding money — because a
model can be talked into a legitimate-looking one. For those, the person responsible answers first, and the
credential exists only after they said yes. A call needs approval when its tool says so
(``@scoped_tool(..., approval=True)``) or when one of its scopes matches a pattern of the task's policy
(``Policy().with_approval(approver, scopes=["write:prescriptions:*"])``, patterns covering scopes the way held
scopes do).

Between the ceiling check and the mint the flow builds an :class:`ApprovalRequest` — the tool, the exact
validated arguments as canonical JSON, the exact scopes — and asks the approver (a driver effect, :class:`Ask`).
What comes back is judged here, once, for both drivers (:func:`judge`): an :class:`Approval` is only good for
the request it names, by the SHA-256 of tool + canonical arguments + scopes + task (``digest``), it is
single-use (its id is consumed in an :class:`ApprovalLedger`) and short-lived (``max_age`` from its decision).
A refusal, a timeout, a changed argument, a stale or replayed approval, no approver, an approver that failed:
each is ``denied`` and nothing is minted. The decision is recorded at the broker (:class:`RecordApproval`, an
extension endpoint; against a broker without it the trace is the record, and the trace event says so).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ..errors import ConfigurationError, ScopeError
from ..scopes import covers, is_identifier, parse_scope
from ._result import jsonable

__all__ = [
    "Approval",
    "ApprovalAnswer",
    "ApprovalLedger",
    "ApprovalRequest",
    "ApprovalRules",
    "Approver",
    "Ask",
    "RecordApproval",
    "RecordOutcome",
    "RefusalReason",
    "Verdict",
    "audit_record",
    "canonical_json",
    "judge",
]

RefusalReason = Literal[
    "denied", "timeout", "arguments_changed", "expired", "replayed", "no_approver", "approver_failed", "not_recorded"
]
_SKEW = 5.0  # seconds an approval's decision time may lie ahead of this clock


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 text (what the approver sees and the digest covers)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=jsonable)


@dataclass(frozen=True)
class ApprovalRequest:
    """What the approver is asked about: exactly the call that will run if they say yes.

    Attributes:
        id: this request's id (32 hex characters); an approval names it and is good once.
        tool: the tool's name.
        arguments: the validated arguments the body will receive (a read-only copy of ``canonical_arguments``).
        canonical_arguments: the same as canonical JSON.
        scope: the exact scopes the credential will hold.
        digest: SHA-256 (hex) of the canonical JSON of tool, arguments, scopes, task and orchestrator.
        task_id: the task. orch_id: its orchestrator. call_id: the call.
        requested_at: Unix seconds. expires_at: when the guard stops waiting for an answer.
    """

    id: str
    tool: str
    arguments: Mapping[str, Any] = field(repr=False)
    canonical_arguments: str = field(repr=False)
    scope: tuple[str, ...]
    digest: str
    task_id: str
    orch_id: str
    call_id: str
    requested_at: float
    expires_at: float

    @classmethod
    def build(
        cls,
        *,
        tool: str,
        kwargs: Mapping[str, Any],
        scope: Sequence[str],
        task_id: str,
        orch_id: str,
        call_id: str,
        now: float,
        timeout: float,
    ) -> ApprovalRequest:
        canonical = canonical_json(dict(kwargs))
        parsed = json.loads(canonical)
        return cls(
            id=secrets.token_hex(16),
            tool=tool,
            arguments=MappingProxyType(parsed),
            canonical_arguments=canonical,
            scope=tuple(scope),
            digest=request_digest(tool, parsed, scope, task_id, orch_id),
            task_id=task_id,
            orch_id=orch_id,
            call_id=call_id,
            requested_at=now,
            expires_at=now + timeout,
        )

    def approve(self, by: str = "approver", *, note: str = "") -> Approval:
        """A yes to exactly this request, from ``by`` (a plain identifier), decided now."""
        return Approval(True, self.digest, self.id, by, time.time(), note)

    def deny(self, by: str = "approver", *, note: str = "") -> Approval:
        """A no to this request."""
        return Approval(False, self.digest, self.id, by, time.time(), note)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what a UI shows or a LangGraph interrupt carries (never a token: none exists yet)."""
        return {
            "kind": "agentwrit_approval",
            "id": self.id,
            "tool": self.tool,
            "arguments": json.loads(self.canonical_arguments),
            "scope": list(self.scope),
            "digest": self.digest,
            "task_id": self.task_id,
            "orch_id": self.orch_id,
            "call_id": self.call_id,
            "requested_at": self.requested_at,
            "expires_at": self.expires_at,
        }


def request_digest(tool: str, arguments: Any, scope: Sequence[str], task_id: str, orch_id: str) -> str:
    """The digest an approval is bound to (see :class:`ApprovalRequest`)."""
    bound = {"tool": tool, "arguments": arguments, "scope": list(scope), "task_id": task_id, "orch_id": orch_id}
    return hashlib.sha256(canonical_json(bound).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Approval:
    """An approver's answer, bound to one request by its ``digest`` and ``approval_id``.

    Attributes:
        approved: yes or no.
        digest: the digest of the request it answers; any other request (another argument, scope, tool or task)
            has another digest, and the approval is worthless for it.
        approval_id: the id of the request it answers; used once.
        approver: who decided (a plain identifier, recorded in the broker's audit log).
        decided_at: Unix seconds; an approval is good for the rules' ``max_age`` from then.
        note: free text for the trace (never shown to the model, never sent to the broker).
    """

    approved: bool
    digest: str
    approval_id: str
    approver: str
    decided_at: float
    note: str = ""

    def __post_init__(self) -> None:
        if not is_identifier(self.approver):
            raise ConfigurationError("an approver is named by a plain identifier (letters, digits, _ . @ + -)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "approved": self.approved,
            "digest": self.digest,
            "approval_id": self.approval_id,
            "approver": self.approver,
            "decided_at": self.decided_at,
        }

    @classmethod
    def from_dict(cls, value: object) -> Approval:
        """An approval that travelled as JSON (a LangGraph resume value, a web form).

        Raises:
            ConfigurationError: not the shape :meth:`to_dict` gives.
        """
        if not isinstance(value, Mapping):
            raise ConfigurationError("an approval is a mapping with approved, digest, approval_id, approver")
        approved, digest, ident, who = (value.get(k) for k in ("approved", "digest", "approval_id", "approver"))
        decided = value.get("decided_at")
        if (
            not isinstance(approved, bool)
            or not isinstance(digest, str)
            or not isinstance(ident, str)
            or not isinstance(who, str)
            or isinstance(decided, bool)
            or not isinstance(decided, (int, float))
        ):
            raise ConfigurationError("an approval is a mapping with approved, digest, approval_id, approver")
        return cls(approved, digest, ident, who, float(decided))


ApproverAnswer = bool | Approval | None
Approver = Callable[[ApprovalRequest], ApproverAnswer | Awaitable[ApproverAnswer]]
"""A callable (sync or ``async``) given the request; it answers True/False, an :class:`Approval`, or None (no)."""


class ApprovalLedger:
    """Approval ids already used, each kept until its approval is too old to be accepted anyway. Thread-safe.

    One per process by default (:data:`SHARED_LEDGER`), so an approval cannot be replayed into another task object
    of the same task either. Bounded: when full of live entries, an approval is refused (``replayed``) rather than
    an entry forgotten.
    """

    def __init__(self, size: int = 10_000, *, clock: Callable[[], float] = time.time) -> None:
        self._size = size
        self._clock = clock
        self._used: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def consume(self, approval_id: str, until: float) -> bool:
        """Mark ``approval_id`` used until ``until``; False when it was used before (or no room is left)."""
        now = self._clock()
        with self._lock:
            for old in [k for k, t in self._used.items() if t < now]:
                del self._used[old]
            if approval_id in self._used or len(self._used) >= self._size:
                return False
            self._used[approval_id] = until
            return True


SHARED_LEDGER = ApprovalLedger()


@dataclass(frozen=True)
class ApprovalRules:
    """Which calls need a person's yes, who is asked, and for how long an answer is good.

    Attributes:
        approver: asked for every call that needs approval (None: such calls are refused).
        scopes: scope patterns (``write:prescriptions:*``): a call holding a scope one of them covers needs
            approval (tools declared with ``approval=True`` always do).
        timeout: seconds to wait for the approver; then the call is refused (``timeout``).
        max_age: seconds an approval stays good after its decision.
    """

    approver: Approver | None
    scopes: tuple[str, ...] = ()
    timeout: float = 120.0
    max_age: float = 120.0

    def __post_init__(self) -> None:
        for pattern in self.scopes:
            try:
                parse_scope(pattern)
            except ScopeError as exc:
                raise ConfigurationError(f"approval scope pattern: {exc}") from exc
        if self.approver is not None and not callable(self.approver):
            raise ConfigurationError("an approver must be callable (sync or async)")
        for value, what in ((self.timeout, "timeout"), (self.max_age, "max_age")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
                raise ConfigurationError(f"approval {what} must be a positive number of seconds (at most a day)")

    def needed_for(self, scopes: Sequence[str]) -> bool:
        """Whether a call holding ``scopes`` needs approval by these rules' patterns."""
        return any(covers(pattern, scope) for pattern in self.scopes for scope in scopes)


# ---- the effects the drivers carry out ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask ``approver`` about ``request``; give up after ``timeout`` seconds → :class:`ApprovalAnswer`."""

    request: ApprovalRequest
    approver: Approver = field(repr=False)
    timeout: float


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    """What the approver did: returned ``value``, raised ``error`` (class name only ever shown), or ran out of
    time (``timed_out``); ``at`` is Unix seconds when the driver had its answer."""

    value: Any
    error: BaseException | None
    timed_out: bool
    at: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's judgement of an answer: granted, or refused for ``reason``; ``approver`` names who decided."""

    granted: bool
    reason: RefusalReason | Literal["approved"]
    approver: str = ""
    approval_id: str = ""


@dataclass(frozen=True, slots=True)
class RecordApproval:
    """Record the verdict on ``request`` in the broker's audit log → :class:`RecordOutcome`."""

    request: ApprovalRequest
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """``broker``: in the broker's audit log; ``trace``: the broker has no such record (the trace is the record);
    ``failed``: the broker could not be reached or refused it (``error`` says why, by class name)."""

    where: Literal["broker", "trace", "failed"]
    error: str | None = None


def judge(request: ApprovalRequest, answer: ApprovalAnswer, rules: ApprovalRules, ledger: ApprovalLedger) -> Verdict:
    """Decide whether ``answer`` approves exactly ``request``, now, for the first time."""
    if answer.timed_out:
        return Verdict(False, "timeout")
    if answer.error is not None:
        return Verdict(False, "approver_failed")
    value = answer.value
    if value is True:
        value = request.approve(getattr(rules.approver, "name", "approver"))
    if value is None or value is False:
        return Verdict(False, "denied", getattr(rules.approver, "name", "approver"))
    if not isinstance(value, Approval):
        return Verdict(False, "approver_failed")
    who = value.approver
    if not value.approved:
        return Verdict(False, "denied", who, value.approval_id)
    if not secrets.compare_digest(value.digest, request.digest):
        return Verdict(False, "arguments_changed", who, value.approval_id)
    if value.decided_at > answer.at + _SKEW or answer.at - value.decided_at > rules.max_age:
        return Verdict(False, "expired", who, value.approval_id)
    if not ledger.consume(value.approval_id, value.decided_at + rules.max_age + _SKEW):
        return Verdict(False, "replayed", who, value.approval_id)
    return Verdict(True, "approved", who, value.approval_id)


def audit_record(request: ApprovalRequest, verdict: Verdict) -> dict[str, object]:
    """The body of the broker's approval record (``POST /v1/audit/approvals``): ids, tool, scopes, digest and the
    decision — never the arguments (they are in the digest) and never a token (none exists yet)."""
    record: dict[str, object] = {
        "approval_id": request.id,
        "task_id": request.task_id,
        "orch_id": request.orch_id,
        "tool": request.tool,
        "scope": list(request.scope),
        "digest": request.digest,
        "decision": "granted" if verdict.granted else "refused",
        "reason": verdict.reason,
    }
    if verdict.approver:
        record["approver"] = verdict.approver
    return record
