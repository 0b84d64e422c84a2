"""Schemathesis over the broker's OpenAPI schema: no 5xx, and every error is an RFC 7807 problem document.

The schema is the one the broker's FastAPI factory builds, completed with the wire contract's request shapes
(:mod:`broker_openapi`). Requests go over loopback to a real embedded broker. Bearer-protected operations get a
genuine token of the principal they need (admin, app, or a freshly registered agent per case, since renew and
release kill theirs), so generated bodies reach validation and business logic instead of stopping at 401.
Both positive (schema-conforming) and negative (schema-violating) data are generated; the number of examples per
operation is kept modest (``AGENTWRIT_FUZZ_EXAMPLES``, default 25) so the suite stays fast.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import schemathesis
from broker_openapi import BEARER, completed
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker, create_app

EXAMPLES = int(os.environ.get("AGENTWRIT_FUZZ_EXAMPLES", "25"))
PROBLEM_FIELDS = ("type", "title", "status", "detail", "instance", "error_code", "request_id")
_TITLES = {413: {"Request Entity Too Large", "Payload Too Large", "Content Too Large"}}

schema = schemathesis.openapi.from_dict(completed(create_app(BrokerSettings(admin_secret="schema-only")).openapi()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES)

RUN: Counter[str] = Counter()


class Principals:
    """Genuine tokens for the operations that need one."""

    def __init__(self, running: Any, client: httpx.Client) -> None:
        self.running = running
        self.client = client
        self.admin = client.post("/v1/admin/auth", json={"secret": running.admin_secret}).json()["access_token"]
        app = running.create_app("fuzz-app", ["read:records:*", "write:notes:*"])
        self.app = client.post(
            "/v1/app/auth", json={"client_id": app.client_id, "client_secret": app.client_secret}
        ).json()["access_token"]

    def agent(self) -> str:
        """A fresh agent token (renew and release end the one they are given)."""
        import base64

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        launch = self.client.post(
            "/v1/admin/launch-tokens",
            json={"agent_name": "fuzz", "allowed_scope": ["read:records:*"]},
            headers={"Authorization": f"Bearer {self.admin}"},
        ).json()["launch_token"]
        nonce = self.client.get("/v1/challenge").json()["nonce"]
        key = Ed25519PrivateKey.generate()
        body = {
            "launch_token": launch,
            "nonce": nonce,
            "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
            "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
            "orch_id": "fuzz",
            "task_id": "fuzz-task",
            "requested_scope": ["read:records:*"],
        }
        return str(self.client.post("/v1/register", json=body).json()["access_token"])

    def token_for(self, method: str, path: str) -> str | None:
        who = BEARER.get((method.lower(), path))
        if who == "agent":
            return self.agent()
        return {"admin": self.admin, "app": self.app}.get(who or "")


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[str, Principals]]:
    with EmbeddedBroker(rate_limits=False) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        yield running.url, Principals(running, client)
        # The broker survived the fuzzing: still healthy, and its audit chain still verifies.
        from agentwrit_tools.auditchain import verify_chain

        health = client.get("/v1/health").json()
        assert health["status"] == "ok"
        assert health["db_connected"] is True
        login = client.post("/v1/admin/auth", json={"secret": running.admin_secret}).json()
        admin = {"Authorization": f"Bearer {login['access_token']}"}
        events: list[dict[str, Any]] = []
        while True:
            page = client.get("/v1/audit/events", params={"limit": 1000, "offset": len(events)}, headers=admin).json()
            events.extend(page["events"])
            if not page["events"] or len(events) >= page["total"]:
                break
        assert verify_chain(events).ok
    print(f"\nschemathesis: {sum(RUN.values())} requests; by status class {dict(sorted(RUN.items()))}")


def _header(response: Any, name: str) -> str:
    value = response.headers.get(name)
    if isinstance(value, list):  # schemathesis keeps every value of a header
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def assert_problem(response: Any, path: str) -> None:
    status = response.status_code
    content_type = _header(response, "content-type")
    assert content_type.startswith("application/problem+json"), (status, content_type, response.text[:300])
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    for name in PROBLEM_FIELDS:
        assert name in body, (name, body)
    assert isinstance(body["error_code"], str)
    assert body["error_code"], body
    assert body["type"] == f"urn:agentwrit:error:{body['error_code']}", body
    assert body["status"] == status, body
    assert body["title"] in _TITLES.get(status, {HTTPStatus(status).phrase}), body
    assert isinstance(body["detail"], str)
    assert body["detail"], body
    assert isinstance(body["request_id"], str)
    assert body["request_id"], body


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    database=None,
)
def test_broker_answers_every_generated_request_without_5xx_and_with_problem_json(
    case: Any, fuzz_target: tuple[str, Principals]
) -> None:
    url, principals = fuzz_target
    token = principals.token_for(case.method, case.path)
    if token is not None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    response = case.call(base_url=url, timeout=30)
    RUN[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert_problem(response, case.path)
    for header, value in (("x-content-type-options", "nosniff"), ("cache-control", "no-store")):
        assert _header(response, header) == value, (header, response.headers)
