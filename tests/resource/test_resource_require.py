"""The plain functions (``require``/``arequire``) over real verifiers, the access log, and failing closed when the
broker cannot be reached — for the plain functions and over HTTP for every integration.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from resource_support import (
    APPS,
    BOUND,
    READ,
    Minter,
    Tokens,
    closed_port_url,
    serve_asgi,
    serve_wsgi,
    signed_by_another_key,
)
from support import feed_reader

from agentwrit_tools import AsyncBroker, AsyncVerifier, Broker, ConfigurationError, RetryPolicy, Verifier
from agentwrit_tools.resource import (
    AccessRecord,
    AccessRefused,
    Gate,
    RequestFacts,
    adecide,
    arequire,
    decide,
    log_access,
    require,
)

NO_RETRY = RetryPolicy(transport_retries=0)


@pytest.fixture
def verifier(rbroker: Any) -> Iterator[Verifier]:
    with Verifier(rbroker.url, revocation_bound=BOUND, leeway=0, **feed_reader(rbroker)) as v:
        yield v


def refused(verifier: Any, token: str | None, params: dict[str, object], **kw: Any) -> AccessRefused:
    with pytest.raises(AccessRefused) as caught:
        require(verifier, token, READ, params=params, **kw)
    return caught.value


# ---- require -------------------------------------------------------------------------------------------------


def test_require_returns_the_verified_claims(verifier: Verifier, tokens: Tokens) -> None:
    claims = require(verifier, tokens.read_p1.access_token, READ, params={"patient_id": "P-1"})
    assert claims == tokens.read_p1.claims


def test_require_refuses_like_the_http_integrations(verifier: Verifier, tokens: Tokens) -> None:
    token = tokens.read_p1.access_token
    cases = [
        (None, {"patient_id": "P-1"}, 401, "unauthorized"),
        ("", {"patient_id": "P-1"}, 401, "unauthorized"),
        (tokens.expired, {"patient_id": "P-1"}, 401, "unauthorized"),
        (signed_by_another_key(token), {"patient_id": "P-1"}, 401, "unauthorized"),
        (token, {"patient_id": "P-2"}, 403, "insufficient_scope"),
        (token, {"patient_id": "*"}, 400, "invalid_request"),
        (token, {"patient_id": "a:b"}, 400, "invalid_request"),
        (token, {"patient_id": ["P-1", "P-2"]}, 403, "insufficient_scope"),
        (token, {}, 400, "invalid_request"),
    ]
    for presented, params, status, code in cases:
        exc = refused(verifier, presented, params)
        assert (exc.status_code, exc.error_code) == (status, code), (params, exc)
        problem = exc.problem()
        assert problem["status"] == status
        assert problem["type"] == f"urn:agentwrit:error:{code}"
        assert token not in str(exc) + json.dumps(problem) + json.dumps(exc.headers())


def test_a_scope_refusal_carries_the_verified_claims(verifier: Verifier, tokens: Tokens) -> None:
    exc = refused(verifier, tokens.read_p1.access_token, {"patient_id": "P-2"})
    assert exc.claims == tokens.read_p1.claims
    assert exc.headers()["WWW-Authenticate"].endswith('scope="read:records:P-2"')


def test_integer_and_list_params_render_exactly(verifier: Verifier, minter: Minter) -> None:
    cred = minter.mint(["read:records:7", "read:records:8"])  # type: ignore[arg-type]
    assert require(verifier, cred.access_token, READ, params={"patient_id": 7}).jti == cred.claims.jti
    assert require(verifier, cred.access_token, READ, params={"patient_id": [7, "8"]}).jti == cred.claims.jti
    assert refused(verifier, cred.access_token, {"patient_id": [7, 9]}).refusal.scope == (
        "read:records:7",
        "read:records:9",
    )


def test_require_works_over_a_broker_client_too(rbroker: Any, minter: Minter, tokens: Tokens) -> None:
    claims = require(minter.broker, tokens.read_p1.access_token, READ, params={"patient_id": "P-1"})
    assert claims.jti == tokens.read_p1.claims.jti


def test_a_ready_gate_is_reused_with_its_access_log(verifier: Verifier, tokens: Tokens) -> None:
    records: list[AccessRecord] = []
    gate = Gate(READ, access_log=records.append)
    require(verifier, tokens.read_p1.access_token, gate, params={"patient_id": "P-1"}, route="fetch-record")
    with pytest.raises(AccessRefused):
        require(verifier, tokens.read_p1.access_token, gate, params={"patient_id": "P-3"}, route="fetch-record")
    assert [r.outcome for r in records] == ["allowed", "insufficient_scope"]
    assert {r.route for r in records} == {"fetch-record"}


def test_the_sync_edge_refuses_an_async_verifier(rbroker: Any, tokens: Tokens) -> None:
    verifier = AsyncVerifier(rbroker.url)
    with pytest.raises(ConfigurationError):
        require(verifier, tokens.read_p1.access_token, READ, params={"patient_id": "P-1"})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        decide(verifier, Gate(READ), RequestFacts(()))  # type: ignore[arg-type]
    anyio.run(verifier.aclose)


def test_revocation_is_honoured_within_the_bound(verifier: Verifier, minter: Minter) -> None:
    cred = minter.mint("read:records:P-9")
    require(verifier, cred.access_token, READ, params={"patient_id": "P-9"})
    minter.broker.admin.revoke("agent", cred.agent_id)
    time.sleep(BOUND + 0.05)
    exc = refused(verifier, cred.access_token, {"patient_id": "P-9"})
    assert exc.status_code in (401, 403)
    assert exc.record.outcome in ("revoked", "unauthorized")


# ---- arequire -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_arequire_with_an_async_verifier(rbroker: Any, tokens: Tokens) -> None:
    async with AsyncVerifier(rbroker.url, revocation_bound=BOUND, **feed_reader(rbroker)) as verifier:
        claims = await arequire(verifier, tokens.read_p1.access_token, READ, params={"patient_id": "P-1"})
        assert claims.jti == tokens.read_p1.claims.jti
        with pytest.raises(AccessRefused) as caught:
            await arequire(verifier, tokens.read_p1.access_token, READ, params={"patient_id": "P-2"})
        assert caught.value.status_code == 403


@pytest.mark.anyio
async def test_arequire_runs_a_sync_verifier_in_a_thread(verifier: Verifier, tokens: Tokens) -> None:
    claims = await arequire(verifier, tokens.read_any.access_token, READ, params={"patient_id": "P-4"})
    assert claims.jti == tokens.read_any.claims.jti
    with pytest.raises(AccessRefused) as caught:
        await arequire(verifier, tokens.expired, READ, params={"patient_id": "P-1"})
    assert caught.value.status_code == 401


@pytest.mark.anyio
async def test_arequire_over_an_async_broker(rbroker: Any, tokens: Tokens) -> None:
    async with AsyncBroker(rbroker.url) as broker:
        verdict = await adecide(
            broker,
            Gate(READ, access_log=None),
            RequestFacts((f"Bearer {tokens.read_p1.access_token}",), {"patient_id": "P-1"}),
        )
    assert verdict.allowed
    assert verdict.claims == tokens.read_p1.claims


# ---- the access log -------------------------------------------------------------------------------------------


def test_the_access_log_names_the_caller_and_never_holds_the_token(
    verifier: Verifier, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    records: list[AccessRecord] = []
    presented = {
        tokens.read_p1.access_token: "P-1",
        tokens.write_p1.access_token: "P-1",
        tokens.expired: "P-1",
        signed_by_another_key(tokens.read_p1.access_token): "P-2",
    }
    caplog.set_level(logging.INFO, logger="agentwrit_tools.resource.access")
    for token, patient in presented.items():
        with contextlib.suppress(AccessRefused):
            require(verifier, token, READ, params={"patient_id": patient}, access_log=[records.append, log_access])
    assert [r.outcome for r in records] == ["allowed", "insufficient_scope", "unauthorized", "unauthorized"]
    assert records[0].agent_id == tokens.read_p1.agent_id
    assert records[0].jti == tokens.read_p1.claims.jti
    assert records[1].agent_id == tokens.write_p1.agent_id
    assert records[1].held == ("write:records:P-1",)
    assert records[1].required == records[1].missing == ("read:records:P-1",)
    assert records[2].agent_id is None  # expired: its claims were never accepted
    assert records[2].reason in ("expired", "refused by the broker")  # local knows why; remote does not say
    text = json.dumps([r.to_dict() for r in records]) + caplog.text + repr(records)
    assert len(caplog.records) == 4
    for token in presented:
        for piece in (token, *token.split(".")):
            if len(piece) >= 8:
                assert piece not in text


def test_a_failing_hook_does_not_change_the_answer(
    verifier: Verifier, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: AccessRecord) -> None:
        raise RuntimeError(f"cannot store {record.jti}")

    caplog.set_level(logging.WARNING, logger="agentwrit_tools.resource")
    assert require(verifier, tokens.read_p1.access_token, READ, params={"patient_id": "P-1"}, access_log=broken)
    with pytest.raises(AccessRefused):
        require(verifier, tokens.read_p1.access_token, READ, params={"patient_id": "P-2"}, access_log=broken)
    assert [r.getMessage().endswith("(RuntimeError)") for r in caplog.records] == [True, True]


# ---- failing closed -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["local-first", "remote"])
def test_an_unreachable_broker_is_503_never_allow(tokens: Tokens, strict: bool) -> None:
    with Verifier(closed_port_url(), strict_verify=strict, retry=NO_RETRY) as verifier:
        exc = refused(verifier, tokens.read_any.access_token, {"patient_id": "P-1"})
    assert (exc.status_code, exc.error_code) == (503, "verification_unavailable")
    assert exc.record.outcome == "unavailable"
    assert "WWW-Authenticate" not in exc.headers()


@pytest.mark.parametrize("extensions", [True, False], ids=["local", "remote"])
def test_a_broker_that_goes_down_fails_closed_once_the_bound_has_passed(tmp_path: Path, extensions: bool) -> None:
    from agentwrit_tools.broker import EmbeddedBroker

    running = EmbeddedBroker(db_path=tmp_path / "b.db", extensions=extensions).start()
    try:
        app = running.create_app("going-down", ["read:records:*"])
        with Broker(running.url, app.client_id, app.client_secret) as client:
            cred = client.mint("read:records:P-1", orch_id="o", task_id="t-down")
        with Verifier(running.url, revocation_bound=BOUND, retry=NO_RETRY, **feed_reader(running)) as verifier:
            require(verifier, cred.access_token, READ, params={"patient_id": "P-1"})
            running.stop()
            time.sleep(BOUND + 0.05)  # the revocation knowledge (or the cached answer) is now too old to trust
            exc = refused(verifier, cred.access_token, {"patient_id": "P-1"})
            assert exc.status_code == 503
    finally:
        running.stop()


@pytest.mark.parametrize("framework", sorted(APPS))
def test_every_integration_answers_503_when_the_broker_is_unreachable(
    framework: str, tokens: Tokens, http: httpx.Client
) -> None:
    records: list[AccessRecord] = []
    url = closed_port_url()
    if framework == "fastapi":
        verifier: Any = AsyncVerifier(url, retry=NO_RETRY)
        server = serve_asgi(APPS[framework](verifier, records.append))
    else:
        verifier = Verifier(url, retry=NO_RETRY)
        app = APPS[framework](verifier, records.append)
        server = serve_asgi(app) if framework == "asgi" else serve_wsgi(app)
    with server as base:
        token = tokens.read_any.access_token
        response = http.get(f"{base}/records/P-1", headers={"Authorization": f"Bearer {token}"})
    if not isinstance(verifier, AsyncVerifier):
        verifier.close()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["error_code"] == "verification_unavailable"
    assert body["title"] == "Service Unavailable"
    assert token not in response.text
    assert [r.outcome for r in records] == ["unavailable"]
