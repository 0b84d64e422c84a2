"""``LaneTransport``: one connection per lane, lanes opened only when needed, requests beyond them wait their turn."""

from __future__ import annotations

import anyio
import httpx
import pytest

from agentwrit_tools.client._lanes import LaneTransport

pytestmark = pytest.mark.anyio

HEALTH = {"status": "ok", "version": "2.0.0", "uptime": 1, "db_connected": True, "audit_events_count": 0}


class Lanes:
    """Builds fake lanes and watches them: how many exist, how many requests each carries at once."""

    def __init__(self, delay: float = 0.005, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.made = 0
        self.closed = 0
        self.served: list[int] = []
        self.overlap = False

    def __call__(self) -> httpx.AsyncBaseTransport:
        number = self.made
        self.made += 1
        busy = False
        watcher = self

        async def handler(request: httpx.Request) -> httpx.Response:
            nonlocal busy
            if busy:
                watcher.overlap = True
            busy = True
            try:
                await anyio.sleep(watcher.delay)
                if watcher.fail:
                    raise httpx.ConnectError("refused", request=request)
            finally:
                busy = False
            watcher.served.append(number)
            return httpx.Response(200, json=HEALTH)

        class Closing(httpx.MockTransport):
            async def aclose(self) -> None:
                watcher.closed += 1

        return Closing(handler)


async def _get_many(transport: LaneTransport, count: int) -> list[int]:
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:

        async def one() -> None:
            statuses.append((await client.get("/v1/health")).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
    return statuses


async def test_no_more_lanes_than_allowed_and_one_request_per_lane_at_a_time() -> None:
    lanes = Lanes()
    assert await _get_many(LaneTransport(3, make_lane=lanes), 30) == [200] * 30
    assert lanes.made == 3
    assert not lanes.overlap
    assert lanes.closed == 3  # closing the client closes every lane


async def test_lanes_open_only_when_concurrency_needs_them() -> None:
    lanes = Lanes()
    transport = LaneTransport(8, make_lane=lanes)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
        for _ in range(10):
            await client.get("/v1/health")
        assert transport.open_lanes == 1
    assert lanes.served == [0] * 10


async def test_a_failing_lane_is_given_back() -> None:
    lanes = Lanes(fail=True)
    transport = LaneTransport(1, make_lane=lanes)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
        for _ in range(3):  # with one lane, a lane kept after a failure would block the next request forever
            with pytest.raises(httpx.ConnectError):
                await client.get("/v1/health")
    assert lanes.made == 1


async def test_waiting_for_a_lane_is_bounded_by_the_pool_timeout() -> None:
    lanes = Lanes(delay=0.5)
    transport = LaneTransport(1, make_lane=lanes)
    timeout = httpx.Timeout(5.0, pool=0.05)
    outcomes: list[object] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test", timeout=timeout) as client:

        async def one() -> None:
            try:
                outcomes.append((await client.get("/v1/health")).status_code)
            except httpx.PoolTimeout as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    assert 200 in outcomes
    assert [type(o) for o in outcomes if o != 200] == [httpx.PoolTimeout]


def test_at_least_one_lane() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LaneTransport(0)
