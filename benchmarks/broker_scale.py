"""The broker at scale: audit queries over 10k and 1M events, and its memory after 10k agent registrations.

*Audit queries*: a database is seeded directly with hash-chained events (:mod:`benchmarks._seed`, about a
minute for a million), then served by ``agentwrit-tools broker serve``; an operator's typical queries run
over HTTP, round-robin: the first page, one task's events, one principal's events, one event type (100 per
page, each with its ``total``). The headline is the p50 over that mix; each query's own p50 is reported too,
and the ratio of the 1M mix to the 10k mix (repetition by repetition): the broker keeps each filter's total and
counts only the events appended since (``broker/_audit_counts.py``), so it should stay near 1. Each query's very
first run on the freshly started broker counts its total in full; that is reported on its own.

*Memory*: resident set size of a fresh broker process, then after registering 10k agents through the wire
(challenge + register with a multi-use launch token, 8 at a time).
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._broker import BrokerProcess, check
from ._harness import Benchmark, Context, Figure
from ._seed import AuditSeed, seed_audit
from ._timing import Latencies, interleave, ratio_figure

__all__ = ["BENCHMARK", "run"]

QUERIES = ("first_page", "by_task", "by_principal", "by_type")
TIMEOUT = httpx.Timeout(120.0)


def _admin_headers(client: httpx.Client, broker: BrokerProcess) -> dict[str, str]:
    admin = check(client.post("/v1/admin/auth", json={"secret": broker.admin_secret}), "admin auth")
    return {"Authorization": f"Bearer {admin['access_token']}"}


def _audit_queries(ctx: Context, seed: AuditSeed, db: Path, label: str) -> tuple[dict[str, Latencies], Latencies]:
    """The mix, repeated, and (second) each query's first run on the freshly started broker."""
    latencies = {name: Latencies() for name in QUERIES}
    cold = {name: Latencies() for name in QUERIES}
    with BrokerProcess(db_path=db) as broker, httpx.Client(base_url=broker.url, timeout=TIMEOUT) as client:
        headers = _admin_headers(client, broker)
        params: dict[str, dict[str, str | int]] = {
            "first_page": {"limit": 100},
            "by_task": {"task_id": seed.task_ids[len(seed.task_ids) // 2], "limit": 100},
            "by_principal": {"agent_id": "app:app-bench", "limit": 100},
            "by_type": {"event_type": "token_released", "limit": 100},
        }

        def query(name: str) -> None:
            body = check(client.get("/v1/audit/events", params=params[name], headers=headers), f"audit {name}")
            if not body["events"]:
                raise RuntimeError(f"audit query {name} found nothing in {seed.count} events")

        operations = {name: (lambda _, name=name: query(name)) for name in QUERIES}
        interleave(operations, 1, cold)  # each query's first run: its total is counted in full
        interleave(operations, 2, {name: Latencies() for name in QUERIES})
        for _ in range(ctx.options.repeat):
            interleave(operations, ctx.options.size(10, 2), latencies)
            ctx.advance()
    return latencies, _mix(cold)


def _mix(latencies: dict[str, Latencies]) -> Latencies:
    mixed = Latencies()
    for rep in range(len(latencies[QUERIES[0]].runs)):
        mixed.runs.append([value for name in QUERIES for value in latencies[name].runs[rep]])
    return mixed


async def _register_agents(url: str, headers: dict[str, str], count: int, ctx: Context) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        launch = check(
            await client.post(
                "/v1/admin/launch-tokens",
                json={"agent_name": "rss", "allowed_scope": ["read:bench:*"], "single_use": False, "ttl": 3600},
                headers=headers,
            ),
            "launch token",
        )["launch_token"]
        numbers = iter(range(count))
        step = max(1, count // 20)

        async def worker() -> None:
            for n in numbers:
                nonce = str(check(await client.get("/v1/challenge"), "challenge")["nonce"])
                key = Ed25519PrivateKey.generate()
                body = {
                    "launch_token": launch,
                    "nonce": nonce,
                    "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
                    "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
                    "orch_id": "bench",
                    "task_id": f"rss-{n // 100}",
                    "requested_scope": [f"read:bench:item-{n}"],
                }
                check(await client.post("/v1/register", json=body), "register")
                if n % step == 0:
                    ctx.advance()

        await asyncio.gather(*(worker() for _ in range(8)))


def _rss(broker: BrokerProcess, readings: int) -> list[float]:
    """Resident memory read ``readings`` times, 50 ms apart (the broker idles meanwhile)."""
    values = []
    for _ in range(readings):
        values.append(broker.rss_mb())
        time.sleep(0.05)
    return values


def _memory(ctx: Context, agents: int) -> tuple[list[float], list[float]]:
    with BrokerProcess() as broker, httpx.Client(base_url=broker.url, timeout=TIMEOUT) as client:
        headers = _admin_headers(client, broker)
        idle = _rss(broker, ctx.options.repeat)
        asyncio.run(_register_agents(broker.url, headers, agents, ctx))
        return idle, _rss(broker, ctx.options.repeat)


def _readings(key: str, label: str, values: list[float], operations: int) -> Figure:
    return Figure(key, label, statistics.median(values), (min(values), max(values)), "MiB", len(values), operations)


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    sizes = {"10k": options.size(10_000, 2_000), "1m": options.size(1_000_000, 20_000)}
    agents = options.size(10_000, 200)
    ctx.phase("broker scale: seed audit events, query, register agents", 1000 + 2 * options.repeat + 21)
    figures: list[Figure] = []
    mixes: dict[str, Latencies] = {}
    with tempfile.TemporaryDirectory(prefix="agentwrit-bench-") as tmp:
        for label, count in sizes.items():
            db = Path(tmp) / f"audit-{label}.db"

            def seeded(rows: int, count: int = count) -> None:
                ctx.advance(max(1, 500 * rows // count))

            seed = seed_audit(db, count, progress=seeded)
            figures.append(
                Figure(
                    f"audit_seed_s_{label}",
                    f"seed {count:,} audit events (direct insert)",
                    seed.seconds,
                    (seed.seconds, seed.seconds),
                    "s",
                    1,
                    count,
                )
            )
            latencies, cold = _audit_queries(ctx, seed, db, label)
            mixes[label] = _mix(latencies)
            figures.append(
                cold.figure(f"audit_first_query_ms_at_{label}", "  slowest query's first run after start", fraction=1.0)
            )
            figures.append(
                mixes[label].figure(f"audit_query_ms_at_{label}", f"audit query, {count:,} events, p50 of the mix")
            )
            for name in QUERIES:
                figures.append(
                    latencies[name].figure(f"audit_{name}_ms_at_{label}", f"  {name.replace('_', ' ')}, p50")
                )
            db.unlink()
    figures.append(
        ratio_figure(
            "audit_query_1m_vs_10k_ratio",
            "audit query at 1M / at 10k events, p50 of the mix",
            mixes["1m"],
            mixes["10k"],
        )
    )
    idle, loaded = _memory(ctx, agents)
    figures.append(_readings("broker_rss_mb_idle", "broker RSS, fresh", idle, 0))
    figures.append(_readings("broker_rss_mb_10k_agents", f"broker RSS after {agents:,} registrations", loaded, agents))
    return figures


BENCHMARK = Benchmark(
    name="scale",
    title="Broker at scale: audit queries over 10k and 1M events, memory after 10k agents",
    note="Seeded databases served by CLI-started brokers (127.0.0.1); queries over HTTP as the operator.",
    run=run,
)
