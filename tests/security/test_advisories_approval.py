"""Advisory 11: a dangerous call without a person's fresh yes to exactly it.

A model talked into a legitimate-looking prescription, or code that holds an old "yes", tries to get a credential
for a call that needs approval. Against the broker under attack: an approval given for other arguments, for
another task, used a second time, too old, dated in the future; a hostile argument (refused before anyone is
asked). Each is denied with nothing minted (the broker's audit log shows no registration for the task), followed
by the legitimate approved call, which runs. Then the approval records endpoint: written by an agent or an
operator, with unknown or token-shaped fields, oversized, or flooded — refused; an app's proper record is kept.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from security_support import AUDIENCE, ISSUER, Wire, bearer, counted, refused, served, unique
from support import MINTING, audit

from agentwrit_tools import Broker, Policy, Task, scoped_tool
from agentwrit_tools.guard import Approval, ApprovalRequest


@scoped_tool("write:prescriptions:{patient_id}", ttl=15, approval=True)
def write_prescription(patient_id: str, drug: str, dose_mg: int) -> str:
    """Write a prescription."""
    return f"{drug} {dose_mg} mg for {patient_id}"


ASKED = {"patient_id": "P-1", "drug": "atorvastatin", "dose_mg": 20}


@pytest.fixture(scope="module")
def app_client(sec_broker: Any) -> Iterator[Broker]:
    app = sec_broker.create_app("approval-advisory", ["write:prescriptions:*"])
    with Broker(sec_broker.url, app.client_id, app.client_secret, issuer=ISSUER, audience=AUDIENCE) as client:
        yield client


@pytest.fixture(scope="module")
def operator_client(sec_broker: Any) -> Iterator[Broker]:
    with Broker(sec_broker.url, admin_secret=sec_broker.admin_secret, issuer=ISSUER, audience=AUDIENCE) as client:
        yield client


def _run(client: Broker, task_id: str, approver: Callable[[ApprovalRequest], Any], **arguments: Any) -> Any:
    policy = Policy().with_approval(approver, max_age=30)
    with Task(client, orch_id="clinic", task_id=task_id, ceiling="write:prescriptions:*", policy=policy) as task:
        return task.call(write_prescription, {**ASKED, **arguments})


Forged = Callable[[ApprovalRequest, ApprovalRequest], Approval]
"""(an earlier request the attacker kept, the request being asked now) -> the approval they present."""

ATTACKS: dict[str, tuple[dict[str, Any], Forged]] = {
    "a yes to another dose": ({"dose_mg": 2000}, lambda kept, now: kept.approve("dr-house")),
    "a yes to another drug": ({"drug": "warfarin"}, lambda kept, now: kept.approve("dr-house")),
    "a yes to another patient": ({"patient_id": "P-2"}, lambda kept, now: kept.approve("dr-house")),
    "a yes from an hour ago": (
        {},
        lambda kept, now: Approval(True, now.digest, now.id, "dr-house", time.time() - 3600),
    ),
    "a yes dated in the future": (
        {},
        lambda kept, now: Approval(True, now.digest, now.id, "dr-house", time.time() + 3600),
    ),
    "a no passed off as a yes": ({}, lambda kept, now: Approval(False, now.digest, now.id, "dr-house", time.time())),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_approval_that_is_not_a_fresh_yes_to_this_call_mints_nothing(
    app_client: Broker, operator_client: Broker, attack: str
) -> None:
    changes, forge = ATTACKS[attack]
    kept: list[ApprovalRequest] = []
    _run(app_client, unique("kept"), lambda request: kept.append(request) or False)
    task_id = unique("attack")
    result = _run(app_client, task_id, lambda request: forge(kept[0], request), **changes)
    assert result.error_kind == "approval_denied", result
    assert audit(operator_client, task_id, *MINTING) == []
    counted("approval", "refused")
    legit = _run(app_client, unique("legit"), lambda request: request.approve("dr-house"))
    assert legit.ok
    counted("approval", "served")


def test_an_approval_is_good_once_and_for_one_task(app_client: Broker, operator_client: Broker) -> None:
    given: list[Approval] = []
    first = unique("once")
    assert _run(app_client, first, lambda r: given.append(r.approve("dr-house")) or given[0]).ok
    counted("approval", "served")
    again = _run(app_client, first, lambda r: given[0])  # the same task, the same call: replayed
    assert again.error_kind == "approval_denied"
    other = unique("other")
    assert _run(app_client, other, lambda r: given[0]).error_kind == "approval_denied"  # another task
    assert audit(operator_client, other, *MINTING) == []
    counted("approval", "refused", 2)


def test_a_hostile_argument_is_refused_before_anyone_is_asked(app_client: Broker) -> None:
    asked: list[ApprovalRequest] = []
    for hostile in ("*", "P-1:*", "../P-2", "P\u20101"):
        result = _run(app_client, unique("hostile"), lambda r: asked.append(r) or True, patient_id=hostile)
        assert result.error_kind == "unsafe_argument"
        counted("approval", "refused")
    assert asked == []


# ---- the approval records endpoint ----------------------------------------------------------------------------


def _record(**changes: Any) -> dict[str, Any]:
    return {
        "approval_id": "a" * 32,
        "task_id": unique("rec"),
        "orch_id": "clinic",
        "tool": "write_prescription",
        "scope": ["write:prescriptions:P-1"],
        "digest": hashlib.sha256(b"call").hexdigest(),
        "decision": "granted",
        "reason": "approved",
        "approver": "dr-house",
        **changes,
    }


def test_only_an_app_writes_approval_records_and_only_in_their_exact_shape(wire: Wire, genuine: Any) -> None:
    path = "/v1/audit/approvals"
    app_token = wire.app_token(wire.create_app(["write:prescriptions:*"]))
    for token in (genuine.agent, genuine.admin, genuine.delegated):
        refused("approval", wire.post(path, json=_record(), headers=bearer(token)), 403, "insufficient_scope")
    for bad in (
        _record(approver=genuine.agent),  # a token smuggled into the log
        _record(detail="approved by the chief of medicine"),  # free text
        _record(digest="x" * 64),
        _record(decision="granted", reason="timeout"),
        _record(scope=[f"write:prescriptions:P-{i}" for i in range(40)]),
    ):
        refused("approval", wire.post(path, json=bad, headers=bearer(app_token)), 400, "invalid_request")
    big = _record(reason="approved" + " " * 5000)
    refused("approval", wire.post(path, json=big, headers=bearer(app_token)), 413, "payload_too_large")
    served("approval", wire.post(path, json=_record(), headers=bearer(app_token)), 201)


def test_one_app_cannot_flood_the_log_with_approval_records(wire: Wire) -> None:
    path = "/v1/audit/approvals"
    token = wire.app_token(wire.create_app(["write:prescriptions:*"]))
    statuses = [wire.post(path, json=_record(task_id="flood"), headers=bearer(token)).status_code for _ in range(80)]
    assert statuses.count(201) <= 45
    limited = wire.post(path, json=_record(task_id="flood"), headers=bearer(token))
    refused("approval", limited, 429, "rate_limited")
    assert len(wire.all_events(task_id="flood")) == statuses.count(201)
    other = wire.app_token(wire.create_app(["write:prescriptions:*"]))
    served("approval", wire.post(path, json=_record(), headers=bearer(other)), 201)
