"""Concurrency: many registrations at once stay distinct, and one-shot things (single-use launch tokens, nonces,
renewal, release) succeed exactly once however many callers race for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._wire import SPIFFE_AGENT, Wire, b64, bearer, claims_of, public_key_b64, verify_chain

pytestmark = pytest.mark.anyio


async def _register(
    client: httpx.AsyncClient, launch_token: str, task_id: str, nonce: str | None = None
) -> httpx.Response:
    if nonce is None:
        challenge = await client.get("/v1/challenge")
        assert challenge.status_code == 200, challenge.text
        nonce = challenge.json()["nonce"]
    key = Ed25519PrivateKey.generate()
    body: dict[str, Any] = {
        "launch_token": launch_token,
        "nonce": nonce,
        "public_key": public_key_b64(key),
        "signature": b64(key.sign(bytes.fromhex(nonce))),
        "orch_id": "orch-conc",
        "task_id": task_id,
        "requested_scope": ["read:data:x"],
    }
    return await client.post("/v1/register", json=body)


def _client(wire: Wire) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(wire.client.base_url), timeout=60.0, limits=httpx.Limits(max_connections=50))


async def test_200_concurrent_registrations_are_all_distinct(fresh_wire: Wire) -> None:
    launch_token = fresh_wire.launch_token(["read:data:*"], single_use=False, ttl=300)
    async with _client(fresh_wire) as client:
        responses = await asyncio.gather(*(_register(client, launch_token, f"task-{i % 7}") for i in range(200)))
        statuses = [r.status_code for r in responses]
        assert statuses == [200] * 200, sorted(set(statuses))
        bodies = [r.json() for r in responses]
        agent_ids = [b["agent_id"] for b in bodies]
        instances = []
        for agent_id in agent_ids:
            match = SPIFFE_AGENT.fullmatch(agent_id)
            assert match, agent_id
            instances.append(match["instance"])
        jtis = [claims_of(b["access_token"])["jti"] for b in bodies]
        assert len(set(agent_ids)) == 200
        assert len(set(instances)) == 200
        assert len(set(jtis)) == 200

        validations = await asyncio.gather(
            *(client.post("/v1/token/validate", json={"token": b["access_token"]}) for b in bodies)
        )
        assert all(v.status_code == 200 and v.json()["valid"] is True for v in validations)

    assert fresh_wire.audit(event_type="agent_registered")["total"] == 200
    verify_chain(fresh_wire.all_events())


async def test_single_use_launch_token_wins_exactly_once(fresh_wire: Wire) -> None:
    launch_token = fresh_wire.launch_token(["read:data:*"])
    async with _client(fresh_wire) as client:
        responses = await asyncio.gather(*(_register(client, launch_token, "race") for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) == {200, 401}, statuses


async def test_a_nonce_wins_exactly_once(fresh_wire: Wire) -> None:
    launch_token = fresh_wire.launch_token(["read:data:*"], single_use=False)
    nonce = fresh_wire.nonce()
    async with _client(fresh_wire) as client:
        responses = await asyncio.gather(*(_register(client, launch_token, "race", nonce) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) == {200, 401}, statuses


async def test_a_token_renews_exactly_once(fresh_wire: Wire) -> None:
    agent = fresh_wire.mint(["read:data:x"])
    async with _client(fresh_wire) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/token/renew", headers=bearer(agent.token)) for _ in range(20))
        )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, sorted(r.status_code for r in responses)
    assert {r.status_code for r in responses if r.status_code != 200} == {401}
    assert fresh_wire.is_valid(winners[0].json()["access_token"])
    fresh_wire.assert_invalid(agent.token)


async def test_a_token_releases_exactly_once(fresh_wire: Wire) -> None:
    agent = fresh_wire.mint(["read:data:x"])
    async with _client(fresh_wire) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/token/release", headers=bearer(agent.token)) for _ in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(204) == 1, statuses
    assert set(statuses) == {204, 403}, statuses
    assert fresh_wire.audit(event_type="token_released")["total"] == 1
