"""Durability: ``kill -9`` of the CLI-started broker under load, several times over, on one database.

Each cycle starts ``agentwrit-tools broker serve`` as a real process on the same SQLite file, checks that everything
acknowledged in every earlier cycle is still there, puts it under load from several threads (apps created,
revocations added, agents registered, agents revoked), and kills it with SIGKILL at a seeded moment while requests
are in flight. A write counts as acknowledged only when its 2xx answer was received before the kill; those must all
survive — the app, the revocation rule (in the feed, and enforced on the token), the agent's token, and the audit
event each of them wrote — and the audit chain must verify from genesis, by :func:`verify_chain` and by the
``agentwrit-tools audit verify`` command. Writes whose answer was lost may or may not have landed; nothing is
asserted about them except that they do not break the chain.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import start_cli_broker

from agentwrit_tools.auditchain import verify_chain
from agentwrit_tools.cli import main

CYCLES = int(os.environ.get("AGENTWRIT_KILL_CYCLES", "5"))
SEED = int(os.environ.get("AGENTWRIT_KILL_SEED", "9"))
WORKERS = 4
SECRET = "kill-nine-secret"


@dataclass
class Acked:
    """What the broker acknowledged (2xx received) before each kill; shared by the worker threads."""

    apps: dict[str, str] = field(default_factory=dict)  # app_id -> name
    revocations: set[tuple[str, str]] = field(default_factory=set)  # (level, target)
    attempted_revocations: set[tuple[str, str]] = field(default_factory=set)
    agents: dict[str, tuple[str, str]] = field(default_factory=dict)  # agent_id -> (task_id, token)
    events: set[tuple[str, str, str]] = field(default_factory=set)  # (event_type, field, value)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    if proc.stdout is not None:
        proc.stdout.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _admin(client: httpx.Client) -> dict[str, str]:
    resp = client.post("/v1/admin/auth", json={"secret": SECRET})
    assert resp.status_code == 200, resp.text
    return _bearer(resp.json()["access_token"])


def _registration(launch_token: str, nonce: str, task_id: str) -> dict[str, Any]:
    import base64

    key = Ed25519PrivateKey.generate()
    return {
        "launch_token": launch_token,
        "nonce": nonce,
        "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
        "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
        "orch_id": "orch-kill",
        "task_id": task_id,
        "requested_scope": ["read:records:x"],
    }


class Worker(threading.Thread):
    """Writes to the broker until it dies; records what was acknowledged."""

    def __init__(self, url: str, admin: dict[str, str], acked: Acked, cycle: int, number: int) -> None:
        super().__init__(name=f"kill9-worker-{number}", daemon=True)
        self.url, self.admin, self.acked = url, admin, acked
        self.cycle, self.number = cycle, number
        self.rng = random.Random(f"{SEED}:{cycle}:{number}")

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = 0
            while True:
                n += 1
                tag = f"c{self.cycle}-w{self.number}-{n}"
                try:
                    self.step(client, tag)
                except (httpx.TransportError, ValueError):
                    return  # the broker is gone (or answered half a body as it died)

    def _ok(self, resp: httpx.Response) -> bool:
        with self.acked.lock:
            self.acked.requests += 1
        return 200 <= resp.status_code < 300

    def step(self, client: httpx.Client, tag: str) -> None:
        acked, op = self.acked, self.rng.choice(["app", "revoke_task", "register", "register", "revoke_agent"])
        if op == "app":
            resp = client.post(
                "/v1/admin/apps", json={"name": f"app-{tag}", "scopes": ["read:records:*"]}, headers=self.admin
            )
            if self._ok(resp):
                app_id = resp.json()["app_id"]
                with acked.lock:
                    acked.apps[app_id] = f"app-{tag}"
                    acked.events.add(("app_registered", "resource", app_id))
        elif op == "revoke_task":
            self._revoke(client, "task", f"task-{tag}")
        elif op == "revoke_agent":
            with acked.lock:
                agents = sorted(acked.agents)
            if agents:
                self._revoke(client, "agent", self.rng.choice(agents))
        else:
            launch = client.post(
                "/v1/admin/launch-tokens",
                json={"agent_name": tag, "allowed_scope": ["read:records:x"], "max_ttl": 3600},
                headers=self.admin,
            )
            if not self._ok(launch):
                return
            nonce = client.get("/v1/challenge").json()["nonce"]
            resp = client.post("/v1/register", json=_registration(launch.json()["launch_token"], nonce, f"task-{tag}"))
            if self._ok(resp):
                body = resp.json()
                jti = _jti(body["access_token"])
                with acked.lock:
                    acked.agents[body["agent_id"]] = (f"task-{tag}", body["access_token"])
                    acked.events.add(("agent_registered", "agent_id", body["agent_id"]))
                    acked.events.add(("token_issued", "resource", jti))

    def _revoke(self, client: httpx.Client, level: str, target: str) -> None:
        with self.acked.lock:
            self.acked.attempted_revocations.add((level, target))
        resp = client.post("/v1/revoke", json={"level": level, "target": target}, headers=self.admin)
        if self._ok(resp):
            with self.acked.lock:
                self.acked.revocations.add((level, target))
                key = "task_id" if level == "task" else "agent_id"
                self.acked.events.add(("token_revoked", key, target))


def _jti(token: str) -> str:
    import base64
    import json

    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


def _paged(client: httpx.Client, path: str, key: str, admin: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    if key == "revocations":
        after = 0
        while True:
            page = client.get(path, params={"after": after, "limit": 1000}, headers=admin).json()
            yield from page["revocations"]
            if not page["has_more"]:
                return
            after = page["next_after"]
    offset = 0
    while True:
        page = client.get(path, params={"limit": 1000, "offset": offset}, headers=admin).json()
        yield from page["events"]
        offset += len(page["events"])
        if not page["events"] or offset >= page["total"]:
            return


def check_survivors(url: str, acked: Acked) -> dict[str, int]:
    """Everything acknowledged is there; returns how many items of each kind were lost (all must be 0)."""
    lost = {"apps": 0, "revocations": 0, "agents": 0, "audit_events": 0, "revocations_not_enforced": 0}
    with httpx.Client(base_url=url, timeout=30) as client:
        admin = _admin(client)
        apps = {a["app_id"]: a["name"] for a in client.get("/v1/admin/apps", headers=admin).json()["apps"]}
        lost["apps"] = sum(apps.get(app_id) != name for app_id, name in acked.apps.items())
        rules = {(r["level"], r["target"]) for r in _paged(client, "/v1/revocations", "revocations", admin)}
        lost["revocations"] = len(acked.revocations - rules)
        events = list(_paged(client, "/v1/audit/events", "events", admin))
        report = verify_chain(events)
        assert report.ok, report
        assert report.checked == client.get("/v1/health").json()["audit_events_count"]  # none cut off the end
        present = {(e["event_type"], name, e[name]) for e in events for name in ("resource", "agent_id", "task_id")}
        lost["audit_events"] = len(acked.events - present)
        for agent_id, (task_id, token) in acked.agents.items():
            valid = client.post("/v1/token/validate", json={"token": token}).json()["valid"]
            revoked = {("agent", agent_id), ("task", task_id)}
            if revoked & acked.revocations:
                lost["revocations_not_enforced"] += valid
            elif not revoked & acked.attempted_revocations:
                lost["agents"] += not valid
    return lost


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 semantics")
def test_kill_9_under_load_loses_nothing_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "broker.db"
    acked = Acked()
    rng = random.Random(SEED)
    losses: list[dict[str, int]] = []
    for cycle in range(CYCLES):
        proc, url = start_cli_broker(db, SECRET)
        try:
            if cycle:
                losses.append(check_survivors(url, acked))
            with httpx.Client(base_url=url, timeout=10) as client:
                admin = _admin(client)
            workers = [Worker(url, admin, acked, cycle, n) for n in range(WORKERS)]
            for worker in workers:
                worker.start()
            time.sleep(rng.uniform(0.4, 1.2))
        finally:
            _kill9(proc)
        for worker in workers:
            worker.join(30)
    proc, url = start_cli_broker(db, SECRET)
    try:
        losses.append(check_survivors(url, acked))
        monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", SECRET)
        capsys.readouterr()
        assert main(["audit", "verify", "--url", url]) == 0
        assert "audit chain OK" in capsys.readouterr().out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()
    with capsys.disabled():
        print(
            f"\nkill -9 cycles: {CYCLES}; acknowledged: {len(acked.apps)} apps, {len(acked.revocations)} revocations,"
            f" {len(acked.agents)} agents, {len(acked.events)} audit events; requests sent: {acked.requests};"
            f" lost: {[sum(x.values()) for x in losses]}"
        )
    assert all(sum(loss.values()) == 0 for loss in losses), losses
    # The load really ran.
    assert len(acked.agents) > 10
    assert len(acked.revocations) > 5
    assert acked.apps
