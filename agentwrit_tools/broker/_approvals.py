"""Extension: approval records — ``POST /v1/audit/approvals`` (app bearer).

A call that needs a person's yes is decided in the application (the guard asks its approver), before anything is
minted. The broker's audit log is where every credential of a task is accounted for, so the decision belongs
there too: who decided, on what (tool, exact scopes, the digest the approval was bound to), granted or refused and
why, and when (the event's own timestamp, in the hash chain with everything else).

What an app may write here is narrow on purpose — it is a log, and logs are targets:

* app tokens only (the app that ran the task; agents, operators and anonymous callers are refused);
* a small JSON object (at most :data:`MAX_BODY` bytes) with exactly the fields below, every id under the
  broker's identifier rule, the tool name under the guard's, the digest 64 hex characters, the decision and its
  reason from fixed lists — nothing free-form, nothing that could hold a token or an argument's value;
* at most :data:`RATE` records per second per app (burst :data:`BURST`): 429 with ``Retry-After`` beyond.

Recorded as ``approval_granted`` (outcome ``success``) or ``approval_refused`` (outcome ``denied``) with the
app as the actor (``agent_id`` is ``app:<id>``: the approver's name is the app's word, and the detail says so).
With the extensions off the route does not exist (404): the guard then says its trace is the record.
"""

from __future__ import annotations

import re
from typing import Any

from ..scopes import is_identifier
from . import _audit
from ._audit import AuditFilter
from ._bodies import req_identifier, req_scope_list, req_str
from ._core import BrokerCore
from ._problems import Problem, bad_request
from ._ratelimit import RateLimiter

__all__ = ["BURST", "MAX_BODY", "RATE", "ApprovalRecords"]

MAX_BODY = 4096
RATE = 20.0
BURST = 40
MAX_SCOPES = 32
_LOOKBACK = 16  # how many of the app's latest records of that task and decision are searched for the new one
_FIELDS = frozenset({"approval_id", "task_id", "orch_id", "tool", "scope", "digest", "decision", "reason", "approver"})
_TOOL = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_REASONS = {
    "granted": frozenset({"approved"}),
    "refused": frozenset(
        {
            "denied",
            "timeout",
            "arguments_changed",
            "expired",
            "replayed",
            "no_approver",
            "approver_failed",
            "not_recorded",
        }
    ),
}


class ApprovalRecords:
    """The endpoint's state: one rate limiter, per app."""

    def __init__(self, rate: float = RATE, burst: int = BURST) -> None:
        self.limiter = RateLimiter(rate, burst)

    async def record(self, core: BrokerCore, claims: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """Validate ``body`` strictly and append it to the audit log; the new event's id.

        Raises:
            Problem: 400 for anything but the exact shape; 429 past the app's rate.
        """
        who = str(claims.get("sub", ""))
        wait = self.limiter.acquire(who)
        if wait:
            await core.record_denial("app_rate_limited", claims=claims, detail="approval records", resource="approvals")
            raise Problem(
                429,
                "rate_limited",
                "too many approval records for this app",
                headers={"Retry-After": RateLimiter.retry_after(wait)},
            )
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise bad_request(f"unknown field {unknown[0][:40]!r}", hint=f"fields: {', '.join(sorted(_FIELDS))}")
        approval_id = req_identifier(body, "approval_id")
        task_id = req_identifier(body, "task_id")
        orch_id = req_identifier(body, "orch_id")
        tool = req_str(body, "tool", max_len=64)
        if not _TOOL.fullmatch(tool):
            raise bad_request("field 'tool' must be a tool name (1-64 ASCII letters, digits, '_' or '-')")
        scope = req_scope_list(body, "scope")
        if len(scope) > MAX_SCOPES:
            raise bad_request(f"field 'scope' holds more than {MAX_SCOPES} scopes")
        digest = req_str(body, "digest", max_len=64)
        if not _DIGEST.fullmatch(digest):
            raise bad_request("field 'digest' must be 64 lowercase hex characters (SHA-256)")
        decision = req_str(body, "decision", max_len=16)
        if decision not in _REASONS:
            raise bad_request("field 'decision' must be 'granted' or 'refused'")
        reason = req_str(body, "reason", max_len=32)
        if reason not in _REASONS[decision]:
            raise bad_request(f"field 'reason' must be one of: {', '.join(sorted(_REASONS[decision]))}")
        approver = body.get("approver")
        if approver is not None and not is_identifier(approver):
            raise bad_request("field 'approver' must be a plain identifier")
        named = f"approver {approver}" if approver else "no approver"
        verb = "approved" if decision == "granted" else f"refused ({reason})"
        detail = f"{tool} needing {','.join(scope)}: {verb}; {named}, as reported by {who}; approval {approval_id}"
        event_type, detail = f"approval_{decision}", detail[:1000]
        async with core.tx() as tx:
            await _audit.append(
                tx,
                event_type,
                agent_id=who,
                task_id=task_id,
                orch_id=orch_id,
                detail=detail,
                resource=digest,
                outcome="success" if decision == "granted" else "denied",
            )
        return {
            "recorded": True,
            "event_id": await _event_id(core, AuditFilter(who, task_id, event_type), digest, detail),
        }


async def _event_id(core: BrokerCore, flt: AuditFilter, digest: str, detail: str) -> str | None:
    """The id of the record just committed: a store chains events as they commit (PostgreSQL: inside the
    database), so the id is read back — the latest of the app's records of that task and decision that is this one
    (its detail names the approval id)."""
    where, args = flt.where()
    async with core.store.reader() as tx:
        total = await tx.audit_count(where, args)
        recent = await tx.audit_events(where, args, _LOOKBACK, max(0, total - _LOOKBACK))
    return next((str(e["id"]) for e in reversed(recent) if e["resource"] == digest and e["detail"] == detail), None)
