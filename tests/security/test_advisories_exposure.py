"""Advisory 9: exposure without authentication.

``/v1/metrics`` showed task ids and scope prefixes, ``/v1/revocations`` (which names every revoked task and agent)
needed no credential, and every response said which server software answered. Metrics now carry counts with
labels from fixed or bounded sets only, the feed asks for an app or admin bearer (the client's verifier sends
one), and no ``Server`` header is sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from broker._wire import ROUTE_TEMPLATES
from prometheus_client.parser import text_string_to_metric_families
from security_support import Genuine, Wire, bearer, counted, refused, served, unique, wire_for

from agentwrit_tools.broker import EmbeddedBroker
from agentwrit_tools.broker._metrics import MAX_ACTIONS


@pytest.fixture
def own() -> Iterator[Wire]:
    with EmbeddedBroker(rate_limits=False) as running, wire_for(running) as w:
        yield w


FIXED_LABELS = {"success", "failure", "rate_limited", "token", "agent", "task", "chain", "unmatched", "other"}
ROUTES = set(ROUTE_TEMPLATES)


def _labels(text: str) -> set[str]:
    """Every label value in a scrape, except the histogram's bucket bounds."""
    return {
        value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name, value in sample.labels.items()
        if name != "le"
    }


def test_metrics_name_no_task_agent_scope_or_resource(own: Wire) -> None:
    task = unique("secret-visit")
    agent = own.mint(["read:patient-charts:P-4242"], task_id=task, orch_id="orch-secret")
    own.revoke("task", task)
    own.get(f"/v1/admin/apps/{task}", headers=own.admin())
    resp = own.get("/v1/metrics")
    assert resp.status_code == 200
    for secret in (task, "secret-visit", "orch-secret", "patient-charts", "P-4242", agent.agent_id, agent.jti):
        assert secret not in resp.text, secret
    assert _labels(resp.text) <= FIXED_LABELS | {"read", "admin"} | ROUTES, _labels(resp.text) - FIXED_LABELS
    counted("exposure", "refused")
    assert "agentwrit_tokens_issued_total" in resp.text  # the counts are still there
    counted("exposure", "served")


def test_metric_labels_stay_bounded_whatever_clients_ask_for(own: Wire) -> None:
    actions = [f"act{i}" for i in range(MAX_ACTIONS + 8)]
    launch = own.launch_token([f"{action}:data:*" for action in actions], single_use=False, ttl=120)
    for action in actions:
        own.register(own.register_body(launch, [f"{action}:data:x"]))
    issued = [
        s.labels["scope"]
        for family in text_string_to_metric_families(own.get("/v1/metrics").text)
        for s in family.samples
        if s.name == "agentwrit_tokens_issued_total"
    ]
    assert len(set(issued)) <= MAX_ACTIONS + 1, sorted(set(issued))
    assert "other" in issued
    counted("exposure", "refused")


def test_the_revocation_feed_needs_an_app_or_admin_bearer(wire: Wire, genuine: Genuine) -> None:
    refused("exposure", wire.get("/v1/revocations"), 401, "unauthorized")
    refused("exposure", wire.get("/v1/revocations", headers=bearer("not.a.token")), 401, "unauthorized")
    for token in (genuine.agent, genuine.delegated):
        refused("exposure", wire.get("/v1/revocations", headers=bearer(token)), 403, "insufficient_scope")
    for token in (genuine.app, genuine.admin):
        page = served("exposure", wire.get("/v1/revocations", params={"limit": 5}, headers=bearer(token)))
        assert set(page) >= {"revocations", "next_after", "has_more"}


def test_no_response_names_the_server_software(wire: Wire) -> None:
    for resp in (
        wire.get("/v1/health"),
        wire.get("/v1/no-such-endpoint"),
        wire.post("/v1/admin/auth", content=b"{", headers={"Content-Type": "application/json"}),
        httpx.get(f"{str(wire.client.base_url).rstrip('/')}/v1/health"),
    ):
        assert "server" not in resp.headers, resp.headers
    counted("exposure", "refused")
    served("exposure", wire.get("/v1/health"))
