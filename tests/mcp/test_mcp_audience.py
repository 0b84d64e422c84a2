"""Audience binding end to end: the broker extension that binds a token to one resource URL, what a reference
broker does instead (ignores the request: the guard then refuses the credential), and how a deployment on the
reference contract binds tokens anyway (``AA_AUDIENCE`` = the MCP server's URL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_support import SCOPES, ServedMCP, loopback_socket, records_server, serve_asgi
from support import audit

from agentwrit_tools import AsyncBroker, Broker, Task, TokenInvalid, Verifier
from agentwrit_tools.adapters.mcp import connect, mcp_tools
from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker
from agentwrit_tools.errors import AudienceMismatch, ConfigurationError
from agentwrit_tools.resource.mcp import protect

RESOURCE = "http://127.0.0.1:1/mcp"


def _app(running: Any) -> Any:
    return running.create_app(f"aud-{secrets.token_hex(4)}", ["read:records:*"])


def test_a_bound_token_stays_bound_through_renewal_and_delegation_and_survives_a_broker_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "broker.db"
    with EmbeddedBroker(db_path=db) as running:
        app = _app(running)
        secret = running.admin_secret
        with Broker(running.url, app.client_id, app.client_secret) as client:
            credential = client.mint("read:records:P-1", orch_id="o", task_id="t", audience=RESOURCE)
            assert credential.claims.aud == (RESOURCE,)
            before = credential.claims.jti
            credential.renew()  # in place: a fresh jti, the same binding
            renewed = credential
            assert renewed.claims.jti != before
            assert renewed.claims.aud == (RESOURCE,)
            helper = client.mint("read:records:P-1", orch_id="o", task_id="t")
            delegated = renewed.delegate(helper.agent_id, ["read:records:P-1"])
            assert delegated.claims.aud == (RESOURCE,)  # a delegated token keeps its delegator's audience
            token = delegated.access_token
            held = (renewed.access_token, renewed.claims.jti)
    # A new process: nothing cached, the binding is read back from the database.
    with EmbeddedBroker(db_path=db, admin_secret=secret) as running, Broker(running.url) as anyone:
        assert anyone.validate(token).aud == (RESOURCE,)
        released = httpx.post(
            running.url + "/v1/token/release", headers={"Authorization": f"Bearer {held[0]}"}, timeout=10
        )
        assert released.status_code == 204


def test_a_token_with_a_foreign_audience_that_this_broker_did_not_bind_is_refused(tmp_path: Path) -> None:
    # The same key and issuer, no recorded binding: an aud the broker did not issue is not accepted.
    key = tmp_path / "key.pem"
    with EmbeddedBroker(settings=BrokerSettings(signing_key_path=key)) as first:
        app = _app(first)
        with Broker(first.url, app.client_id, app.client_secret) as client:
            token = client.mint("read:records:P-1", orch_id="o", task_id="t", audience=RESOURCE).access_token
    with (
        EmbeddedBroker(settings=BrokerSettings(signing_key_path=key)) as sibling,
        Broker(sibling.url) as anyone,
        pytest.raises(TokenInvalid),
    ):
        anyone.validate(token)


def test_a_bad_audience_is_refused_before_anything_is_sent(broker: Any) -> None:
    app = _app(broker)
    with Broker(broker.url, app.client_id, app.client_secret) as client:
        for bad in ("records", "ftp://host/mcp", "http://user@host/mcp", "http://host/mcp#x", "http://h/" + "a" * 600):
            with pytest.raises(ConfigurationError, match="audience"):
                client.mint("read:records:P-1", orch_id="o", task_id="t", audience=bad)


def test_the_broker_refuses_a_malformed_audience_with_400(broker: Any) -> None:
    from agentwrit_tools.broker._audience import requested_audience
    from agentwrit_tools.broker._problems import Problem

    with pytest.raises(Problem) as refused:
        requested_audience({"audience": "not a url"}, extensions=True)
    assert refused.value.status == 400
    assert requested_audience({"audience": "not a url"}, extensions=False) is None  # ignored, like the reference
    assert requested_audience({}, extensions=True) is None


@pytest.fixture
def reference_broker(tmp_path: Path) -> Iterator[Any]:
    with EmbeddedBroker(db_path=tmp_path / "plain.db", extensions=False) as running:
        yield running


def test_against_a_reference_broker_the_client_refuses_an_unbound_credential_and_releases_it(
    reference_broker: Any,
) -> None:
    app = _app(reference_broker)
    with (
        Broker(reference_broker.url, app.client_id, app.client_secret) as client,
        Broker(reference_broker.url, admin_secret=reference_broker.admin_secret) as operator,
    ):
        with pytest.raises(AudienceMismatch) as refused:
            client.mint("read:records:P-1", orch_id="o", task_id="t-ref", audience=RESOURCE)
        assert refused.value.audience == RESOURCE
        assert len(audit(operator, "t-ref", "token_issued")) == 1
        assert len(audit(operator, "t-ref", "token_released")) == 1


@pytest.mark.anyio
async def test_the_guard_denies_a_bound_tool_when_the_broker_does_not_bind(reference_broker: Any) -> None:
    app = _app(reference_broker)
    from agentwrit_tools import ScopedTool

    ran: list[str] = []

    async def body(arguments: dict[str, Any]) -> str:
        ran.append(arguments["patient_id"])
        return "ran"

    tool = ScopedTool.from_schema(
        body,
        {"type": "object", "properties": {"patient_id": {"type": "string"}}, "required": ["patient_id"]},
        name="get_record",
        scope=SCOPES["get_record"],
        audience=RESOURCE,
    )
    async with (
        AsyncBroker(reference_broker.url, app.client_id, app.client_secret) as aclient,
        Task(aclient, orch_id="o", task_id="t-guard", ceiling="read:records:P-1") as task,
    ):
        result = await task.acall(tool, {"patient_id": "P-1"})
    assert result.denied
    assert result.error_kind == "scope_mismatch"
    assert result.message == f"access denied: the credential issued was not bound to {RESOURCE}; the call was not run"
    assert ran == []


@pytest.mark.anyio
async def test_a_reference_deployment_binds_by_configuring_the_servers_url_as_its_audience(tmp_path: Path) -> None:
    sock = loopback_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    served = ServedMCP(url)
    settings = BrokerSettings(audience=url)  # AA_AUDIENCE, as a reference broker is configured
    with EmbeddedBroker(db_path=tmp_path / "ref.db", extensions=False, settings=settings) as running:
        app = _app(running)
        with Verifier(running.url) as verifier:
            protected = protect(records_server(served), verifier=verifier, resource=url, scopes=SCOPES, access_log=None)
            with serve_asgi(protected, sock=sock):
                async with AsyncBroker(running.url, app.client_id, app.client_secret) as aclient, connect(url) as conn:
                    tools = await mcp_tools(conn, scopes=SCOPES)
                    async with Task(
                        aclient, orch_id="o", task_id="t-cfg", ceiling="read:records:P-1", tools=tools
                    ) as t:
                        result = await t.acall("get_record", {"patient_id": "P-1"})
    assert result.ok, result.message
    assert verifier.verification_mode == "remote"  # no JWKS on the reference contract
    [seen] = served.tool_saw
    assert seen["claims"].aud == (url,)


def test_delegation_can_bind_an_unbound_token_but_never_rebind_a_bound_one(broker: Any) -> None:
    from agentwrit_tools.errors import ScopeViolation

    app = _app(broker)
    other = "http://127.0.0.1:2/mcp"
    with Broker(broker.url, app.client_id, app.client_secret) as client:
        unbound = client.mint("read:records:P-1", orch_id="o", task_id="t-d")
        helper = client.mint("read:records:P-1", orch_id="o", task_id="t-d")
        bound = unbound.delegate(helper, "read:records:P-1", audience=RESOURCE)
        assert bound.claims.aud == (RESOURCE,)
        assert bound.delegate(helper, "read:records:P-1", audience=RESOURCE).claims.aud == (RESOURCE,)
        with pytest.raises(ScopeViolation):
            bound.delegate(helper, "read:records:P-1", audience=other)
