"""Several ``agentwrit-tools broker serve`` processes over one PostgreSQL database, and ways to drive them.

* :class:`Replicas` starts N CLI replicas on loopback ports, all pointed at one database, and stops them.
* :class:`RoundRobin` is an httpx transport that sends each request to the next replica — a load balancer in the
  client's connection layer, so the official SDK's flows run unchanged with every request on another replica.
* :func:`register` performs one agent registration over raw HTTP (launch token, challenge, signed nonce).
"""

from __future__ import annotations

import base64
import itertools
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import KEYRING_SECRET, start_cli_broker, stop_process

SECRET = "replicas-admin-secret"


@dataclass
class Replicas:
    """N broker processes serving one PostgreSQL database."""

    database_url: str
    count: int
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def start(self) -> Replicas:
        env = {"AGENTWRIT_KEYRING_SECRET": KEYRING_SECRET, "AA_RATE_LIMITS": "false", **self.extra_env}
        for _ in range(self.count):
            proc, url = start_cli_broker(self.database_url, SECRET, env=env)
            self.procs.append(proc)
            self.urls.append(url)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                stop_process(proc, signal.SIGTERM)

    def kill(self, index: int) -> None:
        """kill -9 replica ``index``."""
        stop_process(self.procs[index], signal.SIGKILL)

    def admin_token(self, index: int = 0) -> str:
        response = httpx.post(self.urls[index] + "/v1/admin/auth", json={"secret": SECRET}, timeout=30)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def __enter__(self) -> Replicas:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RoundRobin(httpx.BaseTransport):
    """Sends each request to the next replica (same path and body): what a load balancer in front would do."""

    def __init__(self, urls: Sequence[str]) -> None:
        self._targets = itertools.cycle([httpx.URL(url) for url in urls])
        self._lock = threading.Lock()
        self._inner = httpx.HTTPTransport()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            target = next(self._targets)
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["host"] = f"{target.host}:{target.port}"
        self.sent.append(f"{target.port} {request.method} {request.url.path}")
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def spread(sdk_app: Any, urls: Sequence[str]) -> RoundRobin:
    """Route an official ``AgentWritApp``'s requests round-robin over ``urls`` (its code is not changed)."""
    balancer = RoundRobin(urls)
    transport = sdk_app._transport  # the SDK's one HTTP client: swapped for one whose connections are balanced
    old = transport._client
    transport._client = httpx.Client(transport=balancer, timeout=30.0, headers=dict(old.headers))
    old.close()
    return balancer


@dataclass(frozen=True)
class Registered:
    agent_id: str
    token: str


def signed_registration(launch_token: str, nonce: str, task_id: str, scope: str) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    return {
        "launch_token": launch_token,
        "nonce": nonce,
        "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
        "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
        "orch_id": "replicas",
        "task_id": task_id,
        "requested_scope": [scope],
    }


def launch_token(client: httpx.Client, url: str, admin: str, scope: str = "read:data:*") -> str:
    response = client.post(
        url + "/v1/admin/launch-tokens",
        json={"agent_name": "replica-test", "allowed_scope": [scope]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    response.raise_for_status()
    return str(response.json()["launch_token"])


def register(
    client: httpx.Client, urls: Sequence[str], admin: str, task_id: str, scope: str = "read:data:x"
) -> Registered:
    """Launch token on the first URL, challenge on the second, registration on the third (cycling)."""
    cycle = itertools.cycle(urls)
    token = launch_token(client, next(cycle), admin)
    nonce = client.get(next(cycle) + "/v1/challenge").json()["nonce"]
    response = client.post(next(cycle) + "/v1/register", json=signed_registration(token, nonce, task_id, scope))
    response.raise_for_status()
    body = response.json()
    return Registered(str(body["agent_id"]), str(body["access_token"]))


def valid(client: httpx.Client, url: str, token: str) -> bool:
    response = client.post(url + "/v1/token/validate", json={"token": token})
    response.raise_for_status()
    return bool(response.json()["valid"])


def audit_events(client: httpx.Client, url: str, admin: str) -> list[dict[str, Any]]:
    """Every audit event, paged, as ``GET /v1/audit/events`` returns them."""
    events: list[dict[str, Any]] = []
    while True:
        page = client.get(
            url + "/v1/audit/events",
            params={"limit": 1000, "offset": len(events)},
            headers={"Authorization": f"Bearer {admin}"},
        )
        page.raise_for_status()
        batch = page.json()["events"]
        events.extend(batch)
        if len(batch) < 1000:
            return events


def feed(client: httpx.Client, url: str, admin: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(
            url + "/v1/revocations", params={"after": after}, headers={"Authorization": f"Bearer {admin}"}
        )
        page.raise_for_status()
        body = page.json()
        rules.extend(body["revocations"])
        after = body["next_after"]
        if not body["has_more"]:
            return rules
