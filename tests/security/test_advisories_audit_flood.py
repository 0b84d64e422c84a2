"""Advisory 4: audit flooding without credentials.

Every refusal of an unauthenticated request appended an audit event: 200 junk requests added 200 rows to a
hash-chained log that is never purged. Refusals of requests that proved nothing are now aggregated per source and
window: the first is recorded as it happens, the rest as one summary event (how many, first and last time) when the
window closes. The chain still records every one of them and still verifies; a credential holder's refusals are
recorded one by one as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from security_support import Wire, bearer, counted, unique, wire_for

from agentwrit_tools.auditchain import verify_chain
from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker

WINDOW = 1.0
JUNK = 200
_SUMMARY = re.compile(r"(\d+) more (\w+) from (\S+) between (\S+) and (\S+) \(aggregated\)")


@pytest.fixture
def flooded() -> Iterator[Wire]:
    settings = BrokerSettings(audit_failure_window=WINDOW, rate_limits=False)
    with EmbeddedBroker(settings=settings) as running, wire_for(running) as w:
        w.admin_token()
        yield w


def _junk(w: Wire, i: int) -> int:
    """One request from someone holding nothing, four kinds in turn."""
    kind = i % 4
    if kind == 0:
        resp = w.post("/v1/token/renew", headers=bearer(f"junk.{i}.token"))
    elif kind == 1:
        resp = w.post("/v1/revoke", json={"level": "task", "target": "x"}, headers=bearer(f"junk{i}"))
    elif kind == 2:
        body = w.register_body("0" * 64, ["read:records:P-1"], task_id=f"t{i}")
        resp = w.register(body)
    else:
        resp = w.post("/v1/app/auth", json={"client_id": f"nobody-{i}", "client_secret": "guess"})
    return resp.status_code


def _summaries(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        match = _SUMMARY.fullmatch(event["detail"])
        if match:
            counts[match[2]] = counts.get(match[2], 0) + int(match[1])
    return counts


def test_junk_requests_cannot_grow_the_audit_log_one_row_each(flooded: Wire) -> None:
    before = flooded.all_events()
    statuses = [_junk(flooded, i) for i in range(JUNK)]
    assert set(statuses) == {401}, set(statuses)
    during = flooded.all_events()
    assert len(during) - len(before) <= 4, during[len(before) :]  # the first refusal of each kind, no more
    counted("audit-flood", "refused", JUNK)

    time.sleep(WINDOW + 0.5)  # the windows close; their summaries are written
    after = flooded.all_events()
    added = after[len(before) :]
    assert len(added) <= 8, added
    firsts = [e for e in added if not _SUMMARY.fullmatch(e["detail"])]
    summaries = _summaries(added)
    # Every refusal is accounted for: one recorded in full per kind, the others counted in the summary.
    assert len(firsts) + sum(summaries.values()) == JUNK, (firsts, summaries)
    assert set(summaries) == {
        "token_renewal_failed",
        "token_auth_failed",
        "registration_policy_violation",
        "app_auth_failed",
    }
    assert all(e["outcome"] == "denied" for e in added)
    assert all("from 127.0.0.1" in e["detail"] for e in added if _SUMMARY.fullmatch(e["detail"]))
    report = verify_chain(after)
    assert report.ok, report
    assert report.checked == len(after), report


def test_a_credential_holders_refusals_are_each_recorded(flooded: Wire) -> None:
    """Refusals of someone who proved who they are stay one event each: they name a principal."""
    task = unique("flood-task")
    holder = flooded.mint(["read:records:P-1"], task_id=task)
    helper = flooded.mint(["read:records:P-2"], task_id=task)
    for _ in range(3):
        resp = flooded.delegate(holder.token, helper.agent_id, ["read:records:*"])
        assert resp.status_code == 403
    events = flooded.all_events(task_id=task, event_type="delegation_attenuation_violation")
    assert len(events) == 3
    assert {e["agent_id"] for e in events} == {holder.agent_id}
    counted("audit-flood", "served", 3)
