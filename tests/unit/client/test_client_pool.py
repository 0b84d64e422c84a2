"""The HTTP clients a Broker builds for itself: no cookie jar, and (async) a bounded number of requests in flight."""

from __future__ import annotations

import anyio
import httpx
import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, FakeBroker, to_call, to_httpx

from agentwrit_tools import AsyncBroker, Broker, BrokerUnavailable
from agentwrit_tools.client import RetryPolicy

URL = "http://broker.test"
HEALTH = {"status": "ok", "version": "2.0.0", "uptime": 1, "db_connected": True, "audit_events_count": 0}


def _planting(fake: FakeBroker, seen: list[httpx.Request]) -> httpx.MockTransport:
    """A broker (or a proxy in front of it) that sets a cookie on every answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        response = to_httpx(fake(to_call(request)))
        response.headers["set-cookie"] = "planted=1; Path=/"
        return response

    return httpx.MockTransport(handler)


def test_cookies_set_by_the_broker_are_never_sent_back() -> None:
    seen: list[httpx.Request] = []
    with Broker(URL, CLIENT_ID, CLIENT_SECRET, transport=_planting(FakeBroker(), seen)) as broker:
        broker.mint("read:data:x", orch_id="o", task_id="t").release()
        assert len(broker._driver.sender.client.cookies) == 0  # type: ignore[attr-defined]
    assert len(seen) >= 4
    assert all("cookie" not in request.headers for request in seen)


@pytest.mark.anyio
async def test_cookies_are_not_kept_by_the_async_client_either() -> None:
    seen: list[httpx.Request] = []
    async with AsyncBroker(URL, CLIENT_ID, CLIENT_SECRET, transport=_planting(FakeBroker(), seen)) as broker:
        await (await broker.mint("read:data:x", orch_id="o", task_id="t")).release()
    assert len(seen) >= 4
    assert all("cookie" not in request.headers for request in seen)


@pytest.mark.anyio
async def test_async_requests_in_flight_never_exceed_max_connections() -> None:
    fake = FakeBroker()
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.005)
        in_flight -= 1
        return to_httpx(fake(to_call(request)))

    transport = httpx.MockTransport(handler)
    async with AsyncBroker(URL, CLIENT_ID, CLIENT_SECRET, transport=transport, max_connections=3) as broker:

        async def one(n: int) -> None:
            async with broker.mint(f"read:data:x{n}", orch_id="o", task_id="t"):
                pass

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(one, n)
    assert peak == 3
    assert fake.paths().count("POST /v1/token/release") == 20


@pytest.mark.anyio
async def test_waiting_for_a_free_connection_is_bounded_by_the_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.5)
        return httpx.Response(200, json=HEALTH)

    options = {"max_connections": 1, "timeout": 0.1, "retry": RetryPolicy(transport_retries=0)}
    outcomes: list[object] = []
    async with AsyncBroker(URL, transport=httpx.MockTransport(slow), **options) as broker:  # type: ignore[arg-type]

        async def one() -> None:
            try:
                outcomes.append(await broker.health())
            except BrokerUnavailable as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    failures = [o for o in outcomes if isinstance(o, BrokerUnavailable)]
    assert len(failures) == 1
    assert failures[0].sent is False  # it never left: safe to retry
