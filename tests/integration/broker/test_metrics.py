"""`GET /v1/metrics`: the contract's metric names are exposed and move with what happens."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from ._wire import Wire, ok

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(wire: Wire) -> Samples:
    resp = wire.get("/v1/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers["content-type"]
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return samples


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == want for k, want in labels.items()))


COUNTERS = {
    "agentwrit_tokens_issued_total": "scope",
    "agentwrit_tokens_revoked_total": "level",
    "agentwrit_registrations_total": "status",
    "agentwrit_admin_auth_total": "status",
}


def test_contract_metric_names_are_exposed(fresh_wire: Wire) -> None:
    # Touch each path once so labelled series exist.
    agent = fresh_wire.mint(["read:data:x"])
    ok(fresh_wire.revoke("token", agent.jti))
    samples = _scrape(fresh_wire)
    for name, label in COUNTERS.items():
        assert name in samples, (name, sorted(samples))
        assert any(label in labels for labels, _ in samples[name]), (name, samples[name])
    assert "agentwrit_launch_tokens_created_total" in samples, sorted(samples)
    assert "agentwrit_active_agents" in samples, sorted(samples)
    buckets = samples.get("agentwrit_request_duration_seconds_bucket", [])
    assert buckets, sorted(samples)
    assert all("endpoint" in labels for labels, _ in buckets)
    assert "agentwrit_request_duration_seconds_count" in samples


def test_metrics_count_what_happens(fresh_wire: Wire) -> None:
    w = fresh_wire
    w.admin_token()
    before = _scrape(w)

    lt = w.launch_token(["read:data:*"], single_use=False)
    agents = [w.mint(["read:data:x"], launch_token=lt) for _ in range(3)]
    w.register(w.register_body(lt, ["write:data:x"]))  # refused: scope violation
    ok(w.revoke("token", agents[0].jti))
    ok(w.revoke("agent", agents[1].agent_id))
    w.post("/v1/admin/auth", json={"secret": "wrong"})
    w.admin_login()

    after = _scrape(w)

    def delta(name: str, **labels: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert delta("agentwrit_launch_tokens_created_total") == 1
    assert delta("agentwrit_registrations_total") == 4
    statuses = {lab["status"] for lab, v in after["agentwrit_registrations_total"] if v > 0}
    assert len(statuses) >= 2, after["agentwrit_registrations_total"]  # successes and failures are told apart
    assert delta("agentwrit_tokens_issued_total") >= 3
    assert delta("agentwrit_tokens_revoked_total", level="token") >= 1
    assert delta("agentwrit_tokens_revoked_total", level="agent") >= 1
    assert delta("agentwrit_admin_auth_total") == 2
    assert len({lab["status"] for lab, v in after["agentwrit_admin_auth_total"] if v > 0}) >= 2
    assert _total(after, "agentwrit_active_agents") >= 1
    assert delta("agentwrit_request_duration_seconds_count") >= 8
    endpoints = {lab["endpoint"] for lab, _ in after["agentwrit_request_duration_seconds_count"]}
    assert len(endpoints) >= 3, endpoints


def test_metrics_need_no_auth_and_leak_no_secrets(fresh_wire: Wire) -> None:
    agent = fresh_wire.mint(["read:data:x"])
    text = fresh_wire.get("/v1/metrics").text
    assert fresh_wire.admin_secret not in text
    assert agent.token not in text
    assert agent.token.split(".")[-1] not in text
