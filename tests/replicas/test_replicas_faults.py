"""Replicas under strain: a key rotation while traffic runs, kill -9 of one replica under load, and the database
going away while they serve. Each test has its own database and replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from replica_support import Replicas, audit_events, feed, register, valid
from support import KEYRING_SECRET

from agentwrit_tools import Verifier
from agentwrit_tools.auditchain import verify_chain


@pytest.fixture
def fresh_replicas(postgres: Any, postgres_url: str) -> Iterator[Replicas]:
    with Replicas(postgres_url, 3) as running:
        yield running


JWKS_REFETCH = 10.5  # the client's jwks_refetch_interval (10 s), and a margin


def _kid(token: str) -> str:
    import base64

    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _jwks_kids(client: httpx.Client, url: str) -> list[str]:
    return [key["kid"] for key in client.get(url + "/.well-known/jwks.json").json()["keys"]]


def test_keys_rotate_while_traffic_runs_and_no_request_fails(fresh_replicas: Replicas) -> None:
    replicas = fresh_replicas
    admin = replicas.admin_token()
    failures: list[str] = []
    cycles = [0]
    stop = threading.Event()

    def traffic(offset: int) -> None:
        urls = replicas.urls[offset:] + replicas.urls[:offset]
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    agent = register(client, urls, admin, f"rot-{offset}")
                    if not valid(client, urls[1], agent.token):
                        failures.append("a fresh token did not validate")
                    released = client.post(
                        urls[2] + "/v1/token/release", headers={"Authorization": f"Bearer {agent.token}"}
                    )
                    if released.status_code != 204:
                        failures.append(f"release answered {released.status_code}")
                    cycles[0] += 1
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)

    app = httpx.post(
        replicas.urls[0] + "/v1/admin/apps",
        json={"name": "rot-verifier", "scopes": ["read:feed:x"]},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    ).json()
    # A resource server verifying locally (JWKS + revocation feed), set up before the rotation.
    verifier = Verifier(replicas.urls[1], client_id=app["client_id"], client_secret=app["client_secret"])
    with httpx.Client(timeout=30) as client, verifier:
        held = register(client, replicas.urls, admin, "rot-held")
        old_kid = _kid(held.token)
        assert verifier.verify(held.token).jti
        jwks_fetched = time.monotonic()
        workers = [threading.Thread(target=traffic, args=(k,)) for k in range(3)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        rotated = subprocess.run(
            [sys.executable, "-m", "agentwrit_tools.cli", "broker", "keys", "rotate", "--db", replicas.database_url],
            env={**os.environ, "AGENTWRIT_KEYRING_SECRET": KEYRING_SECRET},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split("new signing key ")[1].split()[0]
        switched = time.monotonic()
        pending = set(range(3))
        while pending:  # every replica signs with the new key within the refresh interval
            for index in list(pending):
                agent = register(client, [replicas.urls[index]], admin, "rot-probe")
                if _kid(agent.token) == new_kid:
                    pending.discard(index)
            assert time.monotonic() - switched < 5, "a replica kept signing with the old key"
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        assert failures == []
        assert cycles[0] > 0
        for url in replicas.urls:
            assert _jwks_kids(client, url) == [new_kid, old_kid]  # the old key is published until it retires
            assert valid(client, url, held.token)  # and what it signed still verifies
        fresh = register(client, replicas.urls, admin, "rot-after")
        assert _kid(fresh.token) == new_kid
        # The local verifier learns the new kid without a restart, at its next JWKS fetch for an unknown kid (at
        # most one per JWKS_REFETCH seconds, so a flood of forged kids cannot become a flood of fetches).
        time.sleep(max(0.0, jwks_fetched + JWKS_REFETCH - time.monotonic()))
        assert verifier.verify(fresh.token).jti
        assert verifier.verification_mode == "local"
        assert verifier.verify(held.token).jti


@dataclass
class Ledger:
    """What the replicas acknowledged during the load (only 2xx answers count)."""

    apps: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    after_kill: dict[str, int] = field(default_factory=dict)
    survivor_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_kill_9_of_one_replica_under_load_loses_nothing_acknowledged(fresh_replicas: Replicas) -> None:
    replicas = fresh_replicas
    admin = replicas.admin_token(1)
    ledger = Ledger()
    killed = threading.Event()
    stop = threading.Event()
    victim = replicas.urls[0]
    headers = {"Authorization": f"Bearer {admin}"}

    def load(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not stop.is_set():
                url = replicas.urls[(worker + n) % 3]
                n += 1
                was_killed = killed.is_set()
                try:
                    if n % 2:
                        made = client.post(
                            url + "/v1/admin/apps",
                            json={"name": f"k9-{worker}-{n}", "scopes": ["read:data:*"]},
                            headers=headers,
                        )
                        if made.status_code == 200:
                            with ledger.lock:
                                ledger.apps.append(made.json()["app_id"])
                    else:
                        agent = register(client, [url], admin, f"k9-{worker}")
                        revoked = client.post(
                            url + "/v1/revoke", json={"level": "agent", "target": agent.agent_id}, headers=headers
                        )
                        if revoked.status_code == 200:
                            with ledger.lock:
                                ledger.revoked.append(agent.agent_id)
                    if was_killed and url != victim:
                        with ledger.lock:
                            ledger.after_kill[url] = ledger.after_kill.get(url, 0) + 1
                except (httpx.HTTPError, KeyError):
                    if url != victim:
                        with ledger.lock:
                            ledger.survivor_errors.append(url)

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(load, k) for k in range(4)]
        time.sleep(1.5)
        replicas.kill(0)  # kill -9 while requests are in flight
        killed.set()
        time.sleep(1.5)
        stop.set()
        for future in running:
            future.result(timeout=60)

    assert ledger.survivor_errors == []
    assert set(ledger.after_kill) == set(replicas.urls[1:])  # the survivors kept serving
    assert ledger.apps
    assert ledger.revoked
    with httpx.Client(timeout=30) as client:
        stored_apps = {
            a["app_id"] for a in client.get(replicas.urls[2] + "/v1/admin/apps", headers=headers).json()["apps"]
        }
        assert set(ledger.apps) <= stored_apps
        rules = {(r["level"], r["target"]) for r in feed(client, replicas.urls[1], admin)}
        assert {("agent", agent_id) for agent_id in ledger.revoked} <= rules
        events = audit_events(client, replicas.urls[2], admin)
    assert verify_chain(events).ok
    registered = {e["resource"] for e in events if e["event_type"] == "app_registered"}
    revocations = {e["agent_id"] for e in events if e["event_type"] == "token_revoked"}
    assert set(ledger.apps) <= registered
    assert set(ledger.revoked) <= revocations
    print(f"\nkill -9 under load: {len(ledger.apps)} apps and {len(ledger.revoked)} revocations acknowledged, 0 lost")


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _cut(postgres: Any, url: str, *, allow: bool) -> None:
    """Take the database away from the broker (refuse and drop its connections), or give it back."""
    name = _database_name(url)
    if allow:
        postgres.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        return
    postgres.execute(
        f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608 - our name
        " AND pid <> pg_backend_pid()",
    )


def test_losing_the_database_while_serving_gives_503s_and_the_broker_recovers(postgres: Any, postgres_url: str) -> None:
    with Replicas(postgres_url, 1) as replicas, httpx.Client(timeout=30) as client:
        url = replicas.urls[0]
        admin = replicas.admin_token()
        before = register(client, [url], admin, "lost")
        events_before = len(audit_events(client, url, admin))
        _cut(postgres, postgres_url, allow=False)
        try:
            time.sleep(1.2)  # past the revocation bound: the replica can no longer vouch for its copy
            answers = {
                "challenge": client.get(url + "/v1/challenge"),
                "validate": client.post(url + "/v1/token/validate", json={"token": before.token}),
                "release": client.post(url + "/v1/token/release", headers={"Authorization": f"Bearer {before.token}"}),
                "launch": client.post(
                    url + "/v1/admin/launch-tokens",
                    json={"agent_name": "x", "allowed_scope": ["read:data:x"]},
                    headers={"Authorization": f"Bearer {admin}"},
                ),
            }
            health = client.get(url + "/v1/health")
        finally:
            _cut(postgres, postgres_url, allow=True)
        for name, answer in answers.items():
            assert answer.status_code == 503, (name, answer.status_code)
            body = answer.json()
            assert answer.headers["content-type"] == "application/problem+json"
            assert body["error_code"] == "service_unavailable"
            assert answer.headers["retry-after"] == "1"
            assert "postgres" not in json.dumps(body).lower()
        assert health.status_code == 200
        assert health.json()["db_connected"] is False
        deadline = time.monotonic() + 20
        while True:  # it recovers on its own once the database answers again
            try:
                after = register(client, [url], admin, "lost")
                break
            except httpx.HTTPStatusError:
                assert time.monotonic() < deadline, "the broker did not recover"
                time.sleep(0.2)
        assert valid(client, url, after.token)
        assert valid(client, url, before.token)  # the release during the outage was not stored
        events = audit_events(client, url, admin)
        assert verify_chain(events).ok
        # nothing refused during the outage left a trace; the recovery's registration did
        assert len(events) > events_before
        assert not [e for e in events[events_before:] if e["event_type"] == "token_released"]
