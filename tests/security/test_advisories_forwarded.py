"""Advisory 3: rate-limit bypass through ``X-Forwarded-For``.

From loopback, a rotating ``X-Forwarded-For`` avoided every 429 on admin authentication, and the audit recorded
the spoofed address: the HTTP server trusted the header from 127.0.0.1 by default. Now it is believed only from
the proxies the operator names (``forwarded_allow_ips``, none by default); limits and the audit use the real peer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from security_support import Wire, counted, refused, served, wire_for

from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker

ATTEMPTS = 30  # well past the burst of 10 at 5/s, even with the scrypt check slowing each attempt down


def _spoofed(i: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{i % 250 + 1}"}


@pytest.fixture
def limited() -> Iterator[Wire]:
    """Rate limits on, no trusted proxy (the default)."""
    with EmbeddedBroker(settings=BrokerSettings(audit_failure_window=0)) as running, wire_for(running) as w:
        yield w


@pytest.fixture
def behind_proxy() -> Iterator[Wire]:
    """Rate limits on, and the loopback peer named as the trusted proxy."""
    settings = BrokerSettings(forwarded_allow_ips=("127.0.0.1",), audit_failure_window=0)
    with EmbeddedBroker(settings=settings) as running, wire_for(running) as w:
        yield w


def _failed_logins(w: Wire) -> list[dict[str, Any]]:
    return w.all_events(event_type="admin_auth_failed")


def test_rotating_x_forwarded_for_does_not_escape_the_admin_rate_limit(limited: Wire) -> None:
    limited.admin_token()  # the operator's own login, before the attack drains the bucket (to read the audit)
    statuses = [
        limited.post("/v1/admin/auth", json={"secret": "guess"}, headers=_spoofed(i)).status_code
        for i in range(ATTEMPTS)
    ]
    assert 429 in statuses, statuses
    limited_response = limited.post("/v1/admin/auth", json={"secret": "guess"}, headers=_spoofed(999))
    refused("forwarded", limited_response, 429, "rate_limited")
    # The audit names the real peer, never the address the request claimed.
    details = [event["detail"] for event in _failed_logins(limited)]
    assert details, "failed admin logins are audited"
    assert all("127.0.0.1" in detail and "203.0.113." not in detail for detail in details), details
    counted("forwarded", "refused")


def test_a_named_proxy_is_believed(behind_proxy: Wire) -> None:
    """The operator's proxy reports the client: each client has its own bucket, and the audit names it."""
    behind_proxy.admin_token()
    for i in range(15):
        resp = behind_proxy.post("/v1/admin/auth", json={"secret": "guess"}, headers=_spoofed(i))
        assert resp.status_code == 401, resp.text
    served("forwarded", behind_proxy.post("/v1/admin/auth", json={"secret": behind_proxy.admin_secret}))
    details = {event["detail"] for event in _failed_logins(behind_proxy)}
    assert {f"client 203.0.113.{i + 1}" for i in range(15)} <= details, details
