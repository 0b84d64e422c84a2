"""Login rate limits: admin 5/s burst 10 per client IP, app 10/min burst 3 per client_id; 429 with Retry-After."""

from __future__ import annotations

import math
import time

import httpx

from ._wire import SECURITY_HEADERS, Wire, assert_problem, ok
from .conftest import StartBroker


def _retry_after(resp: httpx.Response) -> float:
    value = resp.headers.get("retry-after")
    assert value is not None, dict(resp.headers)
    assert value.isdigit(), value  # HTTP's delay-seconds: a non-negative integer
    for name, expected in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == expected, name
    seconds = float(value)
    assert seconds > 0
    return seconds


def test_admin_login_burst_of_ten_then_429(fresh_wire: Wire) -> None:
    statuses = []
    limited = None
    started = time.monotonic()
    for _ in range(40):
        resp = fresh_wire.admin_login()
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            limited = resp
    elapsed = time.monotonic() - started
    assert statuses[:10] == [200] * 10, statuses
    assert set(statuses) == {200, 429}, statuses
    # Burst 10, then 5 per second: no more successes than the bucket could have refilled meanwhile.
    assert statuses.count(200) <= 10 + math.ceil(5 * elapsed) + 1, (statuses, elapsed)
    assert limited is not None
    assert_problem(limited, 429, "rate_limited")
    wait = _retry_after(limited)
    assert wait <= 60

    time.sleep(min(wait, 2.0) + 0.05)
    assert fresh_wire.admin_login().status_code == 200


def test_wrong_admin_secrets_are_limited_too(fresh_wire: Wire) -> None:
    statuses = [fresh_wire.post("/v1/admin/auth", json={"secret": "guess"}).status_code for _ in range(40)]
    assert statuses[:10] == [401] * 10, statuses
    assert 429 in statuses, statuses


def test_app_login_burst_of_three_per_client_then_429(fresh_wire: Wire) -> None:
    app, other = fresh_wire.create_app(["read:data:*"]), fresh_wire.create_app(["read:data:*"])
    statuses = [fresh_wire.app_login(app).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = fresh_wire.app_login(app)
    assert_problem(limited, 429, "rate_limited")
    # 10/min refills one token every 6 s: the wait announced is a few seconds, not zero and not an hour.
    assert 1 <= _retry_after(limited) <= 60
    # The limit is per client_id: another app is unaffected.
    assert ok(fresh_wire.app_login(other))["access_token"]
    events = fresh_wire.audit(event_type="app_rate_limited")
    assert events["total"] >= 1


def test_without_rate_limits_nobody_gets_429(start_broker: StartBroker) -> None:
    with start_broker(rate_limits=False) as w:
        assert {w.admin_login().status_code for _ in range(30)} == {200}
        app = w.create_app(["read:data:*"])
        assert {w.app_login(app).status_code for _ in range(10)} == {200}
