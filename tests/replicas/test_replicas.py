"""N replicas over one PostgreSQL database behave as one broker.

Every test here drives real ``agentwrit-tools broker serve`` processes (see ``conftest.py``) over loopback HTTP:
whatever one replica issues, another accepts; single-use things stay single-use when replicas race for them; the
audit chain stays one line; a revocation on one replica is refused by the others within the promised second.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from agentwrit import AgentWritApp
from replica_support import (
    Replicas,
    audit_events,
    feed,
    launch_token,
    register,
    signed_registration,
    spread,
    valid,
)

from agentwrit_tools.auditchain import verify_chain

PROPAGATION_BOUND = 1.0  # seconds: the promise (revocation_max_staleness)


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=30) as http:
        yield http


def _new_app(client: httpx.Client, url: str, admin: str, scopes: list[str]) -> dict[str, Any]:
    response = client.post(
        url + "/v1/admin/apps",
        json={"name": f"replicas-{secrets.token_hex(4)}", "scopes": scopes},
        headers={"Authorization": f"Bearer {admin}"},
    )
    response.raise_for_status()
    return dict(response.json())


@pytest.mark.parametrize("count", [2, 3])
def test_the_official_sdk_works_with_every_request_on_another_replica(
    replicas: Replicas, admin: str, client: httpx.Client, count: int
) -> None:
    urls = replicas.urls[:count]
    created = _new_app(client, urls[0], admin, ["read:data:*"])  # the app exists on every replica
    sdk = AgentWritApp(urls[1], created["client_id"], created["client_secret"], timeout=30.0)
    balancer = spread(sdk, urls)
    try:
        task = f"task-{secrets.token_hex(4)}"
        # launch token, challenge and registration land on different replicas: the nonce and the launch token
        # one replica issued are consumed by another
        lead = sdk.create_agent("orch-replicas", task, ["read:data:*"])
        helper = sdk.create_agent("orch-replicas", task, ["read:data:x"])
        assert sdk.validate(lead.access_token).valid
        old = lead.access_token
        lead.renew()
        assert not sdk.validate(old).valid
        delegated = lead.delegate(helper.agent_id, ["read:data:x"])
        assert sdk.validate(delegated.access_token).valid
        released = lead.access_token
        lead.release()
        # the release cascades to what it delegated, whichever replica is asked
        for url in urls:
            assert not valid(client, url, released)
            assert not valid(client, url, delegated.access_token)
        helper.release()
    finally:
        sdk.close()
    ports = {line.split()[0] for line in balancer.sent}
    assert len(ports) == count, balancer.sent  # every replica served part of it


def test_a_revocation_on_one_replica_is_refused_by_the_others_within_a_second(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    delays: list[float] = []
    for round_ in range(6):
        task = f"task-{secrets.token_hex(4)}"
        agent = register(client, replicas.urls, admin, task)
        source = replicas.urls[round_ % 3]
        others = [url for url in replicas.urls if url != source]
        assert all(valid(client, url, agent.token) for url in others)
        level, target = ("task", task) if round_ % 2 else ("agent", agent.agent_id)
        revoked = client.post(
            source + "/v1/revoke", json={"level": level, "target": target}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert revoked.json()["count"] == 1
        acknowledged = time.monotonic()
        assert not valid(client, source, agent.token)  # the replica that revoked: at once
        for url in others:
            while valid(client, url, agent.token):
                assert time.monotonic() - acknowledged < 5, "revocation never reached a replica"
                time.sleep(0.005)
            delays.append(time.monotonic() - acknowledged)
    print(f"\nrevocation propagation between replicas: max {max(delays) * 1000:.0f} ms over {len(delays)}")
    assert max(delays) < PROPAGATION_BOUND


def test_64_concurrent_registrations_race_for_16_nonces_and_16_launch_tokens(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    task = f"race-{secrets.token_hex(4)}"
    tokens = [launch_token(client, replicas.urls[i % 3], admin) for i in range(16)]
    nonces = [client.get(replicas.urls[i % 3] + "/v1/challenge").json()["nonce"] for i in range(16)]
    # Request k wants launch token k % 16 and nonce k % 16: four requests, on different replicas, per pair.
    bodies = [signed_registration(tokens[k % 16], nonces[k % 16], task, "read:data:x") for k in range(64)]

    async def race() -> list[tuple[int, int]]:
        async with httpx.AsyncClient(timeout=60) as aclient:
            responses = await asyncio.gather(
                *(aclient.post(replicas.urls[k % 3] + "/v1/register", json=body) for k, body in enumerate(bodies))
            )
        return [(k % 16, r.status_code) for k, r in enumerate(responses)]

    outcomes = asyncio.run(race())
    wins = Counter(pair for pair, status in outcomes if status == 200)
    assert sorted(Counter(status for _, status in outcomes).items()) == [(200, 16), (401, 48)]
    assert wins == Counter(range(16))  # each launch token and each nonce used exactly once
    registered = [
        e for e in audit_events(client, replicas.urls[1], admin) if e["task_id"] == task and e["outcome"] == "success"
    ]
    assert Counter(e["event_type"] for e in registered) == {"agent_registered": 16, "token_issued": 16}


def test_concurrent_writes_on_every_replica_append_one_linear_audit_chain(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    created = _new_app(client, replicas.urls[2], admin, ["read:data:*"])
    before = len(audit_events(client, replicas.urls[0], admin))

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as aclient:
            logins = [
                aclient.post(
                    replicas.urls[k % 3] + "/v1/app/auth",
                    json={"client_id": created["client_id"], "client_secret": created["client_secret"]},
                )
                for k in range(30)
            ]
            launches = [
                aclient.post(
                    replicas.urls[k % 3] + "/v1/admin/launch-tokens",
                    json={"agent_name": f"chain-{k}", "allowed_scope": ["read:data:x"]},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                for k in range(30)
            ]
            responses = await asyncio.gather(*logins, *launches)
        return [r.status_code for r in responses]

    statuses = asyncio.run(burst())
    assert Counter(statuses) == {200: 30, 201: 30}
    events = audit_events(client, replicas.urls[1], admin)
    report = verify_chain(events)
    assert report.ok, report.reason
    assert [e["id"] for e in events] == [f"evt-{n:06d}" for n in range(1, len(events) + 1)]
    assert len(events) - before >= 60  # every acknowledged write has its event in the one chain


def test_the_revocation_feed_is_one_ordered_list_on_every_replica(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    agents = [register(client, replicas.urls, admin, f"feed-{secrets.token_hex(3)}") for _ in range(6)]
    for k, agent in enumerate(agents):  # each released on another replica
        client.post(replicas.urls[k % 3] + "/v1/token/release", headers={"Authorization": f"Bearer {agent.token}"})
    seen = [feed(client, url, admin) for url in replicas.urls]
    assert seen[0] == seen[1] == seen[2]
    seqs = [rule["seq"] for rule in seen[0]]
    assert seqs == sorted(set(seqs))
    assert {valid(client, url, a.token) for url, a in itertools.product(replicas.urls, agents)} == {False}


def test_an_app_secret_and_a_delegation_work_on_whichever_replica_receives_them(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    created = _new_app(client, replicas.urls[0], admin, ["read:data:*"])
    for url in replicas.urls:
        login = client.post(
            url + "/v1/app/auth", json={"client_id": created["client_id"], "client_secret": created["client_secret"]}
        )
        assert login.status_code == 200
    task = f"deleg-{secrets.token_hex(3)}"
    a = register(client, replicas.urls, admin, task, "read:data:*")
    b = register(client, replicas.urls[::-1], admin, task, "read:data:y")
    handed = client.post(
        replicas.urls[2] + "/v1/delegate",
        json={"delegate_to": b.agent_id, "scope": ["read:data:y"]},
        headers={"Authorization": f"Bearer {a.token}"},
    )
    assert handed.status_code == 200
    assert all(valid(client, url, handed.json()["access_token"]) for url in replicas.urls)


def test_a_token_revoked_on_one_replica_cannot_be_renewed_on_another_even_at_once(
    replicas: Replicas, admin: str, client: httpx.Client
) -> None:
    agent = register(client, replicas.urls, admin, f"renew-{secrets.token_hex(3)}")
    released = client.post(replicas.urls[0] + "/v1/token/release", headers={"Authorization": f"Bearer {agent.token}"})
    assert released.status_code == 204
    # No wait: replica 1's copy of the rules may not have it yet, but renewal checks the database itself.
    renewed = client.post(replicas.urls[1] + "/v1/token/renew", headers={"Authorization": f"Bearer {agent.token}"})
    assert renewed.status_code == 401
    renewals = [e for e in audit_events(client, replicas.urls[2], admin) if e["event_type"] == "token_renewed"]
    assert not [e for e in renewals if e["agent_id"] == agent.agent_id]
