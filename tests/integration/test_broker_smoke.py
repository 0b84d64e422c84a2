"""One whole flow over real loopback HTTP against the embedded broker, plus restart, concurrency and the CLI."""

from __future__ import annotations

import base64
import re
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import start_cli_broker, stop_process

from agentwrit_tools.auditchain import verify_chain
from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.cli import main


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _registration(launch_token: str, nonce: str, scope: list[str], task: str) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    return {
        "launch_token": launch_token,
        "nonce": nonce,
        "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
        "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
        "orch_id": "orch-smoke",
        "task_id": task,
        "requested_scope": scope,
    }


def _register(client: httpx.Client, app_token: str, scope: list[str], task: str) -> dict[str, Any]:
    launch = client.post(
        "/v1/app/launch-tokens", json={"agent_name": "smoke", "allowed_scope": scope}, headers=_bearer(app_token)
    )
    assert launch.status_code == 201, launch.text
    nonce = client.get("/v1/challenge").json()["nonce"]
    resp = client.post("/v1/register", json=_registration(launch.json()["launch_token"], nonce, scope, task))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _valid(client: httpx.Client, token: str) -> bool:
    resp = client.post("/v1/token/validate", json={"token": token})
    assert resp.status_code == 200
    return bool(resp.json()["valid"])


def test_whole_flow_over_http(tmp_path: Path) -> None:
    with EmbeddedBroker(db_path=tmp_path / "b.db") as broker, httpx.Client(base_url=broker.url) as client:
        resp = client.post("/v1/admin/auth", json={"secret": broker.admin_secret})
        assert resp.status_code == 200
        assert resp.json()["expires_in"] == 300
        admin = resp.json()["access_token"]

        resp = client.post(
            "/v1/admin/apps", json={"name": "smoke-app", "scopes": ["read:records:*"]}, headers=_bearer(admin)
        )
        app = resp.json()
        assert set(app) == {"app_id", "client_id", "client_secret", "scopes", "token_ttl"}

        resp = client.post("/v1/app/auth", json={"client_id": app["client_id"], "client_secret": app["client_secret"]})
        assert resp.json()["scopes"] == ["app:launch-tokens:*", "app:agents:*", "app:audit:read"]
        app_token = resp.json()["access_token"]

        # The app cannot exceed its ceiling, and says which ceiling it hit.
        over = client.post(
            "/v1/app/launch-tokens",
            json={"agent_name": "greedy", "allowed_scope": ["write:records:*"]},
            headers=_bearer(app_token),
        )
        assert (over.status_code, over.json()["error_code"]) == (403, "forbidden")
        assert "read:records:*" in over.json()["detail"]

        # Role separation: the app's token is refused on the admin route, and the refusal is audited.
        wrong_role = client.post(
            "/v1/admin/launch-tokens",
            json={"agent_name": "x", "allowed_scope": ["read:records:x"]},
            headers=_bearer(app_token),
        )
        assert (wrong_role.status_code, wrong_role.json()["error_code"]) == (403, "insufficient_scope")

        lead = _register(client, app_token, ["read:records:*"], "task-smoke")
        helper = _register(client, app_token, ["read:records:p-1"], "task-smoke")
        assert lead["agent_id"].startswith("spiffe://agentwrit.local/agent/orch-smoke/task-smoke/")
        assert _valid(client, lead["access_token"])

        resp = client.post(
            "/v1/delegate",
            json={"delegate_to": helper["agent_id"], "scope": ["read:records:p-1"]},
            headers=_bearer(lead["access_token"]),
        )
        assert resp.status_code == 200, resp.text
        delegated = resp.json()
        assert [r["agent"] for r in delegated["delegation_chain"]] == [lead["agent_id"]]
        claims = client.post("/v1/token/validate", json={"token": delegated["access_token"]}).json()["claims"]
        assert claims["sub"] == helper["agent_id"]
        assert claims["scope"] == ["read:records:p-1"]

        widen = client.post(
            "/v1/delegate",
            json={"delegate_to": lead["agent_id"], "scope": ["read:records:*"]},
            headers=_bearer(delegated["access_token"]),
        )
        assert (widen.status_code, widen.json()["error_code"]) == (403, "scope_violation")

        # Releasing the delegator takes the delegated token with it (extension: cascade).
        assert client.post("/v1/token/release", headers=_bearer(lead["access_token"])).status_code == 204
        assert not _valid(client, lead["access_token"])
        assert not _valid(client, delegated["access_token"])
        again = client.post("/v1/token/release", headers=_bearer(lead["access_token"]))
        assert again.status_code == 403

        resp = client.post("/v1/revoke", json={"level": "task", "target": "task-smoke"}, headers=_bearer(admin))
        assert resp.json() == {"revoked": True, "level": "task", "target": "task-smoke", "count": 1}
        assert not _valid(client, helper["access_token"])

        feed = client.get("/v1/revocations", headers=_bearer(admin)).json()
        assert ("task", "task-smoke") in [(r["level"], r["target"]) for r in feed["revocations"]]

        events = client.get("/v1/audit/events", params={"limit": 1000}, headers=_bearer(admin)).json()
        assert events["total"] == len(events["events"])
        report = verify_chain(events["events"])
        assert report.ok, report
        kinds = {e["event_type"] for e in events["events"]}
        assert {"admin_auth", "app_registered", "agent_registered", "delegation_created", "token_released"} <= kinds
        assert {"token_revoked", "scope_ceiling_exceeded", "delegation_attenuation_violation"} <= kinds
        assert "launch_token_denied" in kinds


def test_restart_keeps_key_apps_revocations_and_chain(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    with EmbeddedBroker(db_path=db, admin_secret="restart-secret") as first, httpx.Client(base_url=first.url) as c:
        creds = first.create_app("survivor", ["read:data:*"])
        app_token = c.post(
            "/v1/app/auth", json={"client_id": creds.client_id, "client_secret": creds.client_secret}
        ).json()["access_token"]
        kept = _register(c, app_token, ["read:data:x"], "task-keep")
        killed = _register(c, app_token, ["read:data:x"], "task-kill")
        admin = c.post("/v1/admin/auth", json={"secret": "restart-secret"}).json()["access_token"]
        c.post("/v1/revoke", json={"level": "task", "target": "task-kill"}, headers=_bearer(admin))
        kid = c.get("/.well-known/jwks.json").json()["keys"][0]["kid"]

    with EmbeddedBroker(db_path=db, admin_secret="restart-secret") as second, httpx.Client(base_url=second.url) as c:
        assert c.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == kid
        assert _valid(c, kept["access_token"])
        assert not _valid(c, killed["access_token"])
        assert c.post(
            "/v1/app/auth", json={"client_id": creds.client_id, "client_secret": creds.client_secret}
        ).is_success
        admin = c.post("/v1/admin/auth", json={"secret": "restart-secret"}).json()["access_token"]
        events = c.get("/v1/audit/events", params={"limit": 1000}, headers=_bearer(admin)).json()["events"]
        assert verify_chain(events).ok


@pytest.mark.anyio
async def test_two_hundred_concurrent_registrations(tmp_path: Path) -> None:
    with EmbeddedBroker(db_path=tmp_path / "b.db") as broker:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=broker.url, limits=limits, timeout=30) as client:
            admin = (await client.post("/v1/admin/auth", json={"secret": broker.admin_secret})).json()["access_token"]
            results: list[str] = []

            async def register(i: int) -> None:
                launch = await client.post(
                    "/v1/admin/launch-tokens",
                    json={"agent_name": f"a{i}", "allowed_scope": ["read:data:*"]},
                    headers=_bearer(admin),
                )
                nonce = (await client.get("/v1/challenge")).json()["nonce"]
                body = _registration(launch.json()["launch_token"], nonce, [f"read:data:{i}"], f"task-{i}")
                resp = await client.post("/v1/register", json=body)
                assert resp.status_code == 200, resp.text
                results.append(resp.json()["agent_id"])

            async with anyio.create_task_group() as tg:
                for i in range(200):
                    tg.start_soon(register, i)
            assert len(set(results)) == 200
            events = (await client.get("/v1/audit/events", params={"limit": 1000}, headers=_bearer(admin))).json()[
                "events"
            ]
            assert verify_chain(events).ok
            assert sum(e["event_type"] == "agent_registered" for e in events) == 200


def test_cli_audit_verify_against_a_running_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmbeddedBroker(db_path=tmp_path / "b.db", admin_secret="cli-secret") as broker:
        broker.create_app("cli-app", ["read:data:*"])
        monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", "cli-secret")
        assert main(["audit", "verify", "--url", broker.url]) == 0
        assert "audit chain OK" in capsys.readouterr().out
        monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", "wrong")
        assert main(["audit", "verify", "--url", broker.url]) == 2
        assert "authentication failed" in capsys.readouterr().err


def test_cli_serve_refuses_a_port_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", "x")
    with EmbeddedBroker(db_path=tmp_path / "a.db") as broker:
        port = broker.url.rsplit(":", 1)[1]
        assert main(["broker", "serve", "--port", port, "--db", str(tmp_path / "b.db")]) == 2
    assert "already in use" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 semantics")
def test_state_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    proc, url = start_cli_broker(db, "kill-secret")
    try:
        with httpx.Client(base_url=url) as c:
            admin = c.post("/v1/admin/auth", json={"secret": "kill-secret"}).json()["access_token"]
            app = c.post("/v1/admin/apps", json={"name": "durable", "scopes": ["read:data:*"]}, headers=_bearer(admin))
            app_token = c.post(
                "/v1/app/auth",
                json={"client_id": app.json()["client_id"], "client_secret": app.json()["client_secret"]},
            ).json()["access_token"]
            alive = _register(c, app_token, ["read:data:x"], "task-alive")
            dead = _register(c, app_token, ["read:data:x"], "task-dead")
            c.post("/v1/revoke", json={"level": "task", "target": "task-dead"}, headers=_bearer(admin))
            # Issued but unused when the process dies: must still work afterwards.
            launch = c.post(
                "/v1/app/launch-tokens",
                json={"agent_name": "later", "allowed_scope": ["read:data:y"]},
                headers=_bearer(app_token),
            ).json()["launch_token"]
            nonce = c.get("/v1/challenge").json()["nonce"]
    finally:
        stop_process(proc, signal.SIGKILL)

    proc, url = start_cli_broker(db, "kill-secret")
    try:
        with httpx.Client(base_url=url) as c:
            assert _valid(c, alive["access_token"])
            assert not _valid(c, dead["access_token"])
            resp = c.post("/v1/register", json=_registration(launch, nonce, ["read:data:y"], "task-later"))
            assert resp.status_code == 200, resp.text
            admin = c.post("/v1/admin/auth", json={"secret": "kill-secret"}).json()["access_token"]
            events = c.get("/v1/audit/events", params={"limit": 1000}, headers=_bearer(admin)).json()["events"]
            assert verify_chain(events).ok
            assert sum(e["event_type"] == "agent_registered" for e in events) == 3
    finally:
        stop_process(proc, signal.SIGTERM)


def test_embedded_broker_api_and_temporary_database() -> None:
    from agentwrit_tools.broker import BrokerSettings
    from agentwrit_tools.errors import ConfigurationError

    broker = EmbeddedBroker(settings=BrokerSettings(trust_domain="example.org"), rate_limits=False)
    assert broker.admin_secret  # generated
    broker.start()
    try:
        assert broker.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", broker.url)
        assert (broker.settings.trust_domain, broker.settings.rate_limits, broker.settings.extensions) == (
            "example.org",
            False,
            True,
        )
        db = broker.settings.db_path
        assert db is not None
        assert db.exists()
        creds = broker.create_app("api-check", ["read:data:*"], token_ttl=600)
        assert (creds.scopes, creds.token_ttl) == (["read:data:*"], 600)
        assert creds.client_secret not in repr(creds)
        for bad in (("Bad Name", ["read:data:*"], None), ("ok", ["read:*:x"], None), ("ok", ["a:b:c"], 0)):
            with pytest.raises(ConfigurationError):
                broker.create_app(*bad)
        assert httpx.get(broker.url + "/v1/health").json()["status"] == "ok"
    finally:
        broker.stop()
    assert not broker.running
    assert not db.exists()
    broker.stop()  # idempotent
