"""The key-binding, approval-record and fast-path extensions on PostgreSQL replicas: what one replica records,
another honours.

A key-bound token registered on one replica is renewed on a second (the binding is kept, read from the shared token
row) and delegated on a third (bound to the delegate's own registered key); an approval record written through one
replica is in the one audit chain every replica serves, under the event id the writer answered with; a launch token
bound to a task on one replica registers only that task's agents on another, and dies everywhere with the task's
revocation on a third; a batch of nonces fetched from one replica registers on the others, each nonce once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from replica_support import Replicas, audit_events, launch_token, signed_registration

from agentwrit_tools.auditchain import verify_chain
from agentwrit_tools.pop import thumbprint


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=30) as http:
        yield http


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _register_bound(client: httpx.Client, url: str, admin: str, task_id: str, scope: str) -> tuple[str, str, bytes]:
    """A key-bound agent registered on ``url``: its id, token and raw public key."""
    key = Ed25519PrivateKey.generate()
    nonce = client.get(url + "/v1/challenge").json()["nonce"]
    body = signed_registration(launch_token(client, url, admin), nonce, task_id, scope)
    public = key.public_key().public_bytes_raw()
    body |= {
        "public_key": base64.b64encode(public).decode(),
        "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
        "key_bound": True,
    }
    response = client.post(url + "/v1/register", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["agent_id"]), str(response.json()["access_token"]), public


def test_a_key_bound_token_stays_bound_across_replicas_and_delegates_to_the_delegates_key(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    task = f"bound-{secrets.token_hex(3)}"
    a_id, a_token, a_key = _register_bound(client, replicas.urls[0], admin, task, "read:data:*")
    assert _claims(a_token)["cnf"] == {"jkt": thumbprint(a_key)}
    renewed = client.post(replicas.urls[1] + "/v1/token/renew", headers={"Authorization": f"Bearer {a_token}"})
    assert renewed.status_code == 200, renewed.text
    assert _claims(renewed.json()["access_token"])["cnf"] == {"jkt": thumbprint(a_key)}
    b_id, _, b_key = _register_bound(client, replicas.urls[2], admin, task, "read:data:y")
    handed = client.post(
        replicas.urls[2] + "/v1/delegate",
        json={"delegate_to": b_id, "scope": ["read:data:y"]},
        headers={"Authorization": f"Bearer {renewed.json()['access_token']}"},
    )
    assert handed.status_code == 200, handed.text
    delegated = _claims(handed.json()["access_token"])
    assert delegated["sub"] == b_id != a_id
    assert delegated["cnf"] == {"jkt": thumbprint(b_key)}


def test_an_approval_record_lands_in_the_one_chain_under_the_id_it_was_answered_with(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    created = client.post(
        replicas.urls[0] + "/v1/admin/apps",
        json={"name": f"approvals-{secrets.token_hex(4)}", "scopes": ["write:prescriptions:*"]},
        headers={"Authorization": f"Bearer {admin}"},
    ).json()
    login = client.post(
        replicas.urls[1] + "/v1/app/auth",
        json={"client_id": created["client_id"], "client_secret": created["client_secret"]},
    )
    app_token = login.json()["access_token"]
    task = f"appr-{secrets.token_hex(3)}"
    answers = []
    for url, decision, reason in zip(
        replicas.urls, ("granted", "refused", "granted"), ("approved", "denied", "approved"), strict=True
    ):
        record = {
            "approval_id": secrets.token_hex(16),
            "task_id": task,
            "orch_id": "medassist",
            "tool": "write_prescription",
            "scope": ["write:prescriptions:P-1042"],
            "digest": hashlib.sha256(task.encode()).hexdigest(),
            "decision": decision,
            "reason": reason,
        }
        response = client.post(
            url + "/v1/audit/approvals", json=record, headers={"Authorization": f"Bearer {app_token}"}
        )
        assert response.status_code == 201, response.text
        answers.append((response.json()["event_id"], record["approval_id"]))
    events = audit_events(client, replicas.urls[2], admin)
    ours = [e for e in events if e["task_id"] == task]
    assert [e["event_type"] for e in ours] == ["approval_granted", "approval_refused", "approval_granted"]
    assert [(e["id"], e["detail"].rsplit(" ", 1)[-1]) for e in ours] == answers
    assert verify_chain(events).ok


def _bound_launch(client: httpx.Client, url: str, admin: str, task: str) -> str:
    response = client.post(
        url + "/v1/admin/launch-tokens",
        json={"agent_name": "replica-test", "allowed_scope": ["read:data:*"], "single_use": False, "task_id": task},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["policy"]["task_id"] == task
    return str(response.json()["launch_token"])


def _register_with(client: httpx.Client, url: str, launch: str, task: str, nonce: str | None = None) -> httpx.Response:
    nonce = nonce or client.get(url + "/v1/challenge").json()["nonce"]
    return client.post(url + "/v1/register", json=signed_registration(launch, nonce, task, "read:data:x"))


@pytest.mark.parametrize("how", ["task revocation", "launch-token revocation"])
def test_a_task_bound_launch_token_dies_on_every_replica_with_its_task(
    replicas: Replicas, admin: str, client: httpx.Client, how: str
) -> None:
    task = f"launch-{secrets.token_hex(3)}"
    launch = _bound_launch(client, replicas.urls[0], admin, task)
    assert _register_with(client, replicas.urls[1], launch, task).status_code == 200
    other = _register_with(client, replicas.urls[1], launch, task + "-other")
    assert (other.status_code, other.json()["error_code"]) == (403, "scope_violation")
    auth = {"Authorization": f"Bearer {admin}"}
    if how == "task revocation":
        done = client.post(replicas.urls[2] + "/v1/revoke", json={"level": "task", "target": task}, headers=auth)
        assert done.status_code == 200, done.text
    else:
        done = client.post(replicas.urls[2] + "/v1/launch-tokens/revoke", json={"task_id": task}, headers=auth)
        assert done.json() == {"revoked": True, "count": 1}
    for url in replicas.urls:
        refused = _register_with(client, url, launch, task)
        assert refused.status_code == 401, refused.text


def test_a_nonce_batch_from_one_replica_registers_on_the_others_each_nonce_once(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    task = f"batch-{secrets.token_hex(3)}"
    launch = _bound_launch(client, replicas.urls[0], admin, task)
    batch = client.post(
        replicas.urls[0] + "/v1/challenges", json={"count": 6}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert batch.status_code == 200, batch.text
    nonces = batch.json()["nonces"]
    for n, nonce in enumerate(nonces):
        assert _register_with(client, replicas.urls[1 + n % 2], launch, task, nonce).status_code == 200
    replayed = _register_with(client, replicas.urls[2], launch, task, nonces[0])
    assert replayed.status_code == 401
