"""Faults: an unreachable broker, the broker's own rate limit, and injected 5xx / non-JSON / 429 answers.

Faults the real broker cannot be made to produce are injected by a transport that wraps the real loopback
transport and replaces the answer for one path; every other call still reaches the real broker.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from client_helpers import new_app
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools import (
    AgentWritError,
    AsyncBroker,
    Broker,
    BrokerUnavailable,
    ProblemError,
    ProtocolError,
    RateLimited,
    ScopeViolation,
    ServerError,
    TokenInvalid,
    Unauthorized,
)

Fault = Callable[[httpx.Request], httpx.Response | None]


class Injecting(httpx.BaseTransport):
    """Real loopback HTTP, except where ``fault`` returns an answer of its own."""

    def __init__(self, fault: Fault) -> None:
        self._real = httpx.HTTPTransport()
        self._fault = fault
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.path)
        answer = self._fault(request)
        return answer if answer is not None else self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


def on(path: str, *answers: httpx.Response) -> Fault:
    """Answer the first calls to ``path`` with ``answers`` in turn, then let it through."""
    queue = list(answers)

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == path and queue:
            return queue.pop(0)
        return None

    return fault


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(running: Any, fault: Fault) -> tuple[Broker, Injecting]:
    app = new_app(running)
    transport = Injecting(fault)
    return Broker(running.url, app.client_id, app.client_secret, transport=transport), transport


def test_an_unreachable_broker_is_a_transport_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with Broker(url, "id", "secret") as broker:
        with pytest.raises(BrokerUnavailable) as info:
            broker.mint("read:data:x", orch_id="o", task_id="t")
        assert info.value.sent is False
        assert not isinstance(info.value, ProblemError)
        forged = jwt.encode({"sub": "x"}, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k"})
        with pytest.raises(BrokerUnavailable):
            broker.verify(forged)  # well-formed, so verification needs the broker's keys
        with pytest.raises(BrokerUnavailable):
            broker.health()


@pytest.mark.anyio
async def test_an_unreachable_broker_is_a_transport_error_async() -> None:
    async with AsyncBroker(f"http://127.0.0.1:{closed_port()}", "id", "secret", timeout=2) as broker:
        with pytest.raises(BrokerUnavailable):
            await broker.mint("read:data:x", orch_id="o", task_id="t")


def test_the_brokers_own_app_auth_rate_limit_is_rate_limited(tmp_path: Path) -> None:
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker(db_path=tmp_path / "b.db") as running:
        app = running.create_app("limited", ["read:data:*"])
        errors: list[RateLimited] = []
        for _ in range(6):  # burst 3 per client_id, then 10/min: a separate client per login
            with Broker(running.url, app.client_id, app.client_secret) as broker:
                try:
                    broker.mint("read:data:x", orch_id="o", task_id="t").release()
                except RateLimited as exc:
                    errors.append(exc)
        assert errors
        assert errors[0].status_code == 429
        assert errors[0].error_code == "rate_limited"
        assert errors[0].retry_after is not None
        assert errors[0].retry_after > 5  # longer than we wait by default, so raised at once


def test_5xx_problem_is_a_server_error(any_broker: Any) -> None:
    body = {"type": "urn:agentwrit:error:internal_error", "title": "Internal Server Error", "status": 500}
    body |= {"detail": "db locked", "instance": "/v1/register", "error_code": "internal_error", "request_id": "r1"}
    broker, _ = _client(any_broker, on("/v1/register", httpx.Response(500, json=body)))
    with broker, pytest.raises(ServerError) as info:
        broker.mint("read:data:x", orch_id="o", task_id="t")
    assert info.value.problem.model_dump() == {**body, "hint": None}


def test_a_proxy_error_page_is_a_server_error(any_broker: Any) -> None:
    page = httpx.Response(502, text="<html><body>Bad Gateway</body></html>", headers={"content-type": "text/html"})
    broker, _ = _client(any_broker, on("/v1/app/launch-tokens", page))
    with broker, pytest.raises(ServerError) as info:
        broker.mint("read:data:x", orch_id="o", task_id="t")
    assert info.value.problem.status == 502
    assert info.value.problem.error_code is None


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/v1/challenge", httpx.Response(200, text="<html>captive portal</html>")),
        ("/v1/register", httpx.Response(200, json={"agent_id": "x"})),
        ("/v1/app/auth", httpx.Response(200, json={"access_token": "", "expires_in": 0})),
    ],
)
def test_bodies_that_break_the_contract_are_protocol_errors(any_broker: Any, path: str, answer: httpx.Response) -> None:
    broker, _ = _client(any_broker, on(path, answer))
    with broker, pytest.raises(ProtocolError):
        broker.mint("read:data:x", orch_id="o", task_id="t")


def test_a_short_retry_after_is_waited_out(any_broker: Any) -> None:
    limited = httpx.Response(429, json={"status": 429, "error_code": "rate_limited"}, headers={"Retry-After": "1"})
    broker, transport = _client(any_broker, on("/v1/challenge", limited))
    with broker:
        broker.mint("read:data:x", orch_id="o", task_id="t").release()
    assert transport.seen.count("/v1/challenge") == 2


def test_a_long_retry_after_is_raised_with_its_value(any_broker: Any) -> None:
    limited = httpx.Response(429, json={"status": 429, "error_code": "rate_limited"}, headers={"Retry-After": "120"})
    broker, transport = _client(any_broker, on("/v1/app/auth", limited))
    with broker, pytest.raises(RateLimited) as info:
        broker.mint("read:data:x", orch_id="o", task_id="t")
    assert info.value.retry_after == 120
    assert transport.seen == ["/v1/app/auth"]


def test_no_token_or_secret_in_any_error_or_log_record(any_broker: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = new_app(any_broker)
    secrets = {app.client_secret, any_broker.admin_secret}
    raised: list[AgentWritError] = []

    def expect(kind: type[AgentWritError], action: Callable[[], object]) -> None:
        with pytest.raises(kind) as info:
            action()
        raised.append(info.value)

    with Broker(any_broker.url, app.client_id, app.client_secret, admin_secret=any_broker.admin_secret) as broker:
        cred = broker.mint("read:data:s", orch_id="o", task_id="t-secret")
        other = broker.mint("read:data:o", orch_id="o", task_id="t-secret")
        secrets |= {cred.access_token, other.access_token}
        assert broker._core.app is not None
        secrets.add(broker.admin.create_launch_token("x", "read:data:*").launch_token)
        cred.release()
        expect(TokenInvalid, lambda: broker.verify(cred.access_token))
        expect(ScopeViolation, lambda: broker.mint("admin:all:x", orch_id="o", task_id="t"))
        expect(ScopeViolation, lambda: other.delegate(other, "read:data:*"))
        expect(Unauthorized, lambda: broker.mint("read:data:s", orch_id="o", task_id="t", launch_token="0" * 64))
        for name, token in (("app", broker._core.app), ("admin", broker._core.admin)):
            cached = getattr(token, "_cached", None)
            assert cached is not None, name
            secrets.add(cached.token)
    with Broker(any_broker.url, app.client_id, "wrong-" + app.client_secret) as wrong:
        expect(Unauthorized, lambda: wrong.mint("read:data:s", orch_id="o", task_id="t"))
    with Broker(f"http://127.0.0.1:{closed_port()}", app.client_id, app.client_secret) as down:
        expect(BrokerUnavailable, lambda: down.mint("read:data:s", orch_id="o", task_id="t"))
    echo = json.dumps({"status": 401, "error_code": "unauthorized", "detail": f"bad token {cred.access_token}"})
    leaky, _ = _client(any_broker, on("/v1/token/validate", httpx.Response(401, content=echo.encode())))
    with leaky:
        expect(Unauthorized, lambda: leaky.validate(cred.access_token))

    texts: list[str] = []
    for error in raised:
        texts += [str(error), repr(error), repr(error.args)]
        problem = getattr(error, "problem", None)
        if problem is not None:
            texts += [repr(problem), problem.model_dump_json()]
        if error.__cause__ is not None:
            texts += [str(error.__cause__), repr(error.__cause__)]
    texts += [record.getMessage() for record in caplog.records]
    assert len(raised) == 7
    assert len(secrets) == 7
    for secret in secrets:
        for text in texts:
            assert secret not in text
