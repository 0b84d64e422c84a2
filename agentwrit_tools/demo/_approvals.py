"""Approvals in a demo: answered by a flag in the terminal, by a person's click in the web UI.

A demo's dangerous calls (a prescription, a refund) ask for approval through the guard
(:meth:`~agentwrit_tools.guard.Policy.with_approval`); the approver a scenario uses is ``run.approver``, which
the stack was given:

* in the terminal, :func:`flag_approver` answers every request at once, yes or no (``--approve``/``--deny``), so
  ``make demo`` never waits for a keyboard; ``--ask`` prompts instead (:func:`~agentwrit_tools.guard.cli_approver`);
* in the web UI, an :class:`ApprovalDesk` holds each request until the person clicks Approve or Deny in the live
  trace (the page POSTs the decision, keyed by the request's id) or the guard's timeout passes.

Either way the guard judges the answer (bound to the call, single-use, fresh) and records it in the broker's
audit log.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ..guard import Approval, ApprovalRequest

__all__ = ["ApprovalDesk", "FlagApprover", "Pending", "flag_approver"]


class FlagApprover:
    """Answers every request at once with the same decision (a command-line flag's)."""

    def __init__(self, approve: bool, *, name: str) -> None:
        self.approve = approve
        self.name = name

    def __call__(self, request: ApprovalRequest) -> Approval:
        return request.approve(self.name) if self.approve else request.deny(self.name)

    def __repr__(self) -> str:
        return f"FlagApprover(approve={self.approve}, name={self.name!r})"


def flag_approver(approve: bool) -> FlagApprover:
    """``--approve`` (True) or ``--deny`` (False), named so in the audit log."""
    return FlagApprover(approve, name="flag-approve" if approve else "flag-deny")


@dataclass
class Pending:
    """A request waiting for a person; ``answer`` is set once they clicked."""

    request: ApprovalRequest
    decided: threading.Event = field(default_factory=threading.Event)
    answer: Approval | None = None


class ApprovalDesk:
    """Requests waiting for a person, by id; the page's Approve/Deny buttons answer them. Thread-safe.

    :attr:`approver` is what the stack hands to scenarios: it parks the request here and waits (in the run's
    worker thread) for :meth:`decide` or the request's expiry, plus a second so the guard's own timeout is the one
    that fires. Finished requests are forgotten.

    Args:
        name: who answers, as recorded in the audit log (the person at the page).
    """

    def __init__(self, *, name: str = "clinician", arrival: float = 2.0) -> None:
        self.name = name
        self._arrival = arrival
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Condition()

    def approver(self, request: ApprovalRequest) -> Approval | None:
        waiting = Pending(request)
        with self._lock:
            self._pending[request.id] = waiting
            self._lock.notify_all()
        try:
            waiting.decided.wait(max(0.0, request.expires_at - time.time()) + 1.0)
            return waiting.answer
        finally:
            with self._lock:
                self._pending.pop(request.id, None)

    def get(self, approval_id: str) -> ApprovalRequest | None:
        """The request still waiting under ``approval_id``, or None."""
        with self._lock:
            found = self._pending.get(approval_id)
        return found.request if found is not None else None

    def decide(self, approval_id: str, approve: bool) -> Approval | None:
        """Answer the waiting request ``approval_id``; None when there is none (unknown, answered or expired).

        The trace line with the buttons is sent as the request is made, a moment before the approver parks it
        here: a click in that moment waits for it (``arrival`` seconds at most).
        """
        with self._lock:
            self._lock.wait_for(lambda: approval_id in self._pending, self._arrival)
            waiting = self._pending.get(approval_id)
            if waiting is None or waiting.answer is not None or time.time() > waiting.request.expires_at:
                return None
            request = waiting.request
            waiting.answer = request.approve(self.name) if approve else request.deny(self.name)
        waiting.decided.set()
        return waiting.answer

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
