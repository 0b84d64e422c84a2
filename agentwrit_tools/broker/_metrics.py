"""Prometheus metrics with the contract's names, one registry per broker.

A registry of its own per broker (not the process-global default) lets several brokers live in one process —
tests and notebooks start many — without "duplicated timeseries" errors or counts leaking between them.

``/v1/metrics`` answers anyone who can reach the port, so what it shows is counts, never names: no task,
agent or app id, no scope identifier or resource. Every label comes from a fixed set — a status, a revocation
level, a route template — except ``tokens_issued_total{scope}``, labelled with each scope's *action* (``read``,
``admin``…), of which at most :data:`MAX_ACTIONS` distinct ones are told apart (the rest count as ``other``),
so the registry cannot grow with what clients ask for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "BrokerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_ACTIONS = 32
OTHER = "other"


class BrokerMetrics:
    """The broker's counters, gauge and histogram in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tokens_issued = Counter(
            "agentwrit_tokens_issued_total", "Tokens issued", ["scope"], registry=self.registry
        )
        self.tokens_revoked = Counter(
            "agentwrit_tokens_revoked_total", "Tokens revoked", ["level"], registry=self.registry
        )
        self.registrations = Counter(
            "agentwrit_registrations_total", "Agent registrations", ["status"], registry=self.registry
        )
        self.admin_auth = Counter(
            "agentwrit_admin_auth_total", "Admin authentication attempts", ["status"], registry=self.registry
        )
        self.launch_tokens_created = Counter(
            "agentwrit_launch_tokens_created_total", "Launch tokens created", registry=self.registry
        )
        self.active_agents = Gauge(
            "agentwrit_active_agents", "Registered agents holding a live, unrevoked token", registry=self.registry
        )
        self.request_duration = Histogram(
            "agentwrit_request_duration_seconds",
            "HTTP request duration",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )

        self._durations: dict[str, Any] = {}
        self._actions: set[str] = set()

    def observe_request(self, endpoint: str, seconds: float) -> None:
        """Record one request's duration. The labelled child is looked up once per endpoint (a route template,
        so the set is bounded), not on every request."""
        child = self._durations.get(endpoint)
        if child is None:
            child = self._durations[endpoint] = self.request_duration.labels(endpoint=endpoint)
        child.observe(seconds)

    def token_issued(self, scopes: Iterable[str]) -> None:
        for action in dict.fromkeys(scope.split(":", 1)[0] for scope in scopes):
            if action not in self._actions:
                if len(self._actions) >= MAX_ACTIONS:
                    action = OTHER
                self._actions.add(action)
            self.tokens_issued.labels(scope=action).inc()

    def track_active_agents(self, count: Callable[[], int]) -> None:
        """Compute the gauge at scrape time (cheap enough, and never stale)."""
        self.active_agents.set_function(lambda: float(count()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
