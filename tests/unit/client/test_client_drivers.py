"""The two drivers and the public classes over ``httpx.MockTransport`` (no sockets)."""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest
from client_fakes import ADMIN_SECRET, CLIENT_ID, CLIENT_SECRET, FakeBroker, mock_transport, to_call, to_httpx

from agentwrit_tools import (
    AsyncBroker,
    AsyncCredential,
    Broker,
    BrokerUnavailable,
    ConfigurationError,
    Credential,
    CredentialReleased,
    TokenInvalid,
    Verifier,
)
from agentwrit_tools.client._steps import Response

URL = "http://broker.test"


def _broker(fake: FakeBroker, **options: object) -> Broker:
    return Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=mock_transport(fake), **options)  # type: ignore[arg-type]


def test_requests_carry_the_contract_headers() -> None:
    seen: list[httpx.Request] = []
    fake = FakeBroker()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return to_httpx(fake(to_call(request)))

    with Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(handler)) as broker:
        broker.mint("read:data:x", orch_id="o", task_id="t").release()
    auth, launch = seen[0], seen[1]
    assert auth.headers["content-type"] == "application/json"
    assert len(auth.headers["x-request-id"]) == 16
    assert "authorization" not in auth.headers
    assert launch.headers["authorization"].startswith("Bearer ")
    assert auth.headers["user-agent"].startswith("agentwrit-tools/")
    assert len({r.headers["x-request-id"] for r in seen}) == len(seen)


def test_a_path_prefix_in_the_broker_url_is_kept() -> None:
    fake = FakeBroker()
    transport = mock_transport(fake, prefix="/broker")
    with Broker(URL + "/broker/", CLIENT_ID, CLIENT_SECRET, transport=transport) as broker:
        assert broker.broker_url == URL + "/broker"
        broker.mint("read:data:x", orch_id="o", task_id="t")
    assert fake.paths()[0] == "POST /v1/app/auth"


def test_connection_failures_become_broker_unavailable_and_unsent_calls_are_retried() -> None:
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    broker = Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(refuse))
    with broker, pytest.raises(BrokerUnavailable) as info:
        broker.mint("read:data:x", orch_id="o", task_id="t")
    assert info.value.sent is False
    assert attempts == ["/v1/app/auth"] * 3
    assert "refused" not in str(info.value)


def test_a_read_timeout_on_register_is_not_resent() -> None:
    fake = FakeBroker()
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        if request.url.path == "/v1/register":
            raise httpx.ReadTimeout("slow", request=request)
        return to_httpx(fake(to_call(request)))

    broker = Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(handler))
    with broker, pytest.raises(BrokerUnavailable) as info:
        broker.mint("read:data:x", orch_id="o", task_id="t")
    assert info.value.sent is True
    assert attempts.count("/v1/register") == 1


def test_threads_share_one_login() -> None:
    fake = FakeBroker()
    lock = threading.Lock()

    def serialized(call):  # type: ignore[no-untyped-def]
        with lock:
            return fake(call)

    broker = Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=mock_transport(serialized))
    creds: list[Credential] = []
    threads = [
        threading.Thread(target=lambda: creds.append(broker.mint("read:data:x", orch_id="o", task_id="t")))
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(creds) == 20
    assert fake.paths().count("POST /v1/app/auth") == 1
    assert len({c.claims.jti for c in creds}) == 20
    broker.close()


@pytest.mark.anyio
async def test_async_tasks_share_one_login_and_release_on_exit() -> None:
    fake = FakeBroker()
    async with AsyncBroker(URL, CLIENT_ID, CLIENT_SECRET, transport=mock_transport(fake)) as broker:
        creds: list[AsyncCredential] = []

        async def one() -> None:
            async with broker.mint("read:data:x", orch_id="o", task_id="t") as cred:
                creds.append(cred)

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(one)
    assert fake.paths().count("POST /v1/app/auth") == 1
    assert all(c.released for c in creds)
    assert fake.paths().count("POST /v1/token/release") == 30


def test_credential_lifecycle_and_repr() -> None:
    fake = FakeBroker()
    with _broker(fake) as broker:
        with broker.mint("read:data:x", orch_id="o", task_id="t", ttl=60) as cred:
            token = cred.access_token
            assert cred.bearer_header == {"Authorization": f"Bearer {token}"}
            assert token not in repr(cred)
            assert token not in str(cred)
            assert cred.scope == ("read:data:x",)
            cred.renew()
            assert cred.access_token != token
            assert broker.verify(cred.access_token).jti == cred.claims.jti
            with pytest.raises(TokenInvalid):
                broker.verify(token)  # the predecessor is revoked
        assert cred.released
        assert cred.release() is False
        with pytest.raises(CredentialReleased):
            cred.renew()
        with pytest.raises(CredentialReleased):
            cred.delegate("spiffe://x", "read:data:x")
        with pytest.raises(TokenInvalid):
            broker.verify(cred.access_token)


def test_with_releases_even_when_the_body_raises() -> None:
    fake = FakeBroker()
    with _broker(fake) as broker, pytest.raises(RuntimeError), broker.mint("read:data:x", orch_id="o", task_id="t"):
        raise RuntimeError("tool failed")
    assert fake.paths()[-1] == "POST /v1/token/release"


def test_a_verifier_needs_only_the_url() -> None:
    fake = FakeBroker()
    with _broker(fake) as broker:
        token = broker.mint("read:data:x", orch_id="o", task_id="t").access_token
    with Verifier(URL, transport=mock_transport(fake)) as verifier:
        assert verifier.verify(token).scope == ("read:data:x",)
        assert verifier.verification_mode == "local"
        assert verifier.revocation_bound == 1.0


def test_a_broker_without_credentials_verifies_but_does_not_mint() -> None:
    fake = FakeBroker()
    with Broker(URL, transport=mock_transport(fake)) as anonymous:
        token = fake.issue(sub="spiffe://a", scope=["read:data:x"])
        assert anonymous.verify(token).sub == "spiffe://a"
        with pytest.raises(ConfigurationError):
            anonymous.mint("read:data:x", orch_id="o", task_id="t")
        with pytest.raises(ConfigurationError):
            anonymous.admin.list_apps()


def test_admin_session_is_cached() -> None:
    fake = FakeBroker()
    fake.override("POST", "/v1/revoke", lambda call: Response(200, {}, b'{"revoked":true,"level":"task","target":"t"}'))
    with Broker(URL, admin_secret=ADMIN_SECRET, transport=mock_transport(fake)) as broker:
        for _ in range(3):
            broker.admin.revoke("task", "t")
    assert fake.paths().count("POST /v1/admin/auth") == 1


@pytest.mark.anyio
async def test_the_async_broker_matches_the_sync_one() -> None:
    fake = FakeBroker()
    async with AsyncBroker(URL, CLIENT_ID, CLIENT_SECRET, transport=mock_transport(fake)) as broker:
        parent = await broker.mint("read:data:*", orch_id="o", task_id="t")
        child = await broker.mint("read:data:1", orch_id="o", task_id="t")
        delegated = await parent.delegate(child, "read:data:1", ttl=30)
        assert isinstance(delegated, AsyncCredential)
        assert delegated.claims.chain_root == parent.agent_id
        assert (await broker.verify(delegated.access_token)).sub == child.agent_id
        await parent.renew()
        assert await parent.release() is True
        with pytest.raises(CredentialReleased):
            await parent.delegate(child, "read:data:1")
        launcher = broker.task_launcher("read:data:*", orch_id="o", task_id="t2", ttl=60)
        assert (await launcher.mint("read:data:5")).scope == ("read:data:5",)


def _release_fails(fake: FakeBroker) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/token/release":
            raise httpx.ConnectError("down", request=request)
        return to_httpx(fake(to_call(request)))

    return httpx.MockTransport(handler)


def test_a_failed_release_does_not_mask_the_tools_own_error(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeBroker()
    broker = Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=_release_fails(fake))
    held: list[str] = []

    def tool() -> None:
        with broker.mint("read:data:x", orch_id="o", task_id="t") as cred:
            held.append(cred.access_token)
            raise RuntimeError("tool failed")

    with pytest.raises(RuntimeError, match="tool failed"):
        tool()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "release" in warnings[0].getMessage()
    assert held[0] not in warnings[0].getMessage()
    with pytest.raises(BrokerUnavailable), broker.mint("read:data:x", orch_id="o", task_id="t"):
        pass  # nothing else failed, so the release failure itself is raised
    broker.close()


@pytest.mark.anyio
async def test_a_failed_async_release_does_not_mask_the_tools_own_error() -> None:
    fake = FakeBroker()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/token/release":
            raise httpx.ConnectError("down", request=request)
        return to_httpx(fake(to_call(request)))

    async with AsyncBroker(URL, CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(handler)) as broker:

        async def tool() -> None:
            async with broker.mint("read:data:x", orch_id="o", task_id="t"):
                raise RuntimeError("tool failed")

        with pytest.raises(RuntimeError, match="tool failed"):
            await tool()


@pytest.mark.anyio
async def test_awaiting_a_pending_mint_twice_mints_once() -> None:
    fake = FakeBroker()
    async with AsyncBroker(URL, CLIENT_ID, CLIENT_SECRET, transport=mock_transport(fake)) as broker:
        pending = broker.mint("read:data:x", orch_id="o", task_id="t")
        assert await pending is await pending
    assert fake.paths().count("POST /v1/register") == 1
