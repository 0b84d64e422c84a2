"""The broker on PostgreSQL: mint+release throughput on one and two replicas, and how fast a revocation travels.

Throughput is full mint+release cycles (``AsyncBroker.mint`` — launch token, challenge, register, verified
claims — then release) per second with 64 concurrent callers, against one CLI-started broker on SQLite, one on
PostgreSQL, and two replicas over that one PostgreSQL database (callers split evenly over them). PostgreSQL
comes from the ``pgserver`` wheel with its default settings (``fsync`` and synchronous commit on), or from
``AGENTWRIT_TEST_DATABASE_URL``.

Propagation is the time from a revocation's acknowledgment on replica A (``POST /v1/revoke`` answered) to the
first refusal of that token by replica B's ``POST /v1/token/validate`` (polled back to back), with LISTEN/NOTIFY
on, and with polling only (every ``AGENTWRIT_REVOCATION_POLL_INTERVAL``, 0.25 s by default). The promise is at
most 1 s either way; a replica that cannot confirm its copy is that fresh answers 503 instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import statistics
import time
from collections.abc import Iterator

import httpx

from agentwrit_tools.client import AsyncBroker

from ._broker import BrokerProcess, check, setup_app
from ._harness import Benchmark, Context, Figure
from ._postgres import LocalPostgres
from ._timing import Latencies, Series, calibrate
from .broker_throughput import _register_request

__all__ = ["BENCHMARK", "WORKERS", "run"]

WORKERS = 64
KEYRING = "bench-keyring-secret"


async def _cycles(urls: list[str], client_id: str, client_secret: str, count: int, numbers: Iterator[int]) -> float:
    remaining = count
    brokers = [AsyncBroker(url, client_id, client_secret) for url in urls]

    async def worker(broker: AsyncBroker) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            n = next(numbers)
            async with broker.mint(f"read:bench:item-{n}", orch_id="bench", task_id=f"replicas-{n % 97}"):
                pass

    async with contextlib.AsyncExitStack() as stack:
        for broker in brokers:
            await stack.enter_async_context(broker)
        start = time.perf_counter()
        await asyncio.gather(*(worker(brokers[k % len(brokers)]) for k in range(WORKERS)))
        return time.perf_counter() - start


def _throughput(ctx: Context, urls: list[str], client_id: str, client_secret: str) -> Series:
    options = ctx.options
    numbers = itertools.count()
    warmup = options.size(2 * WORKERS, WORKERS)
    elapsed = asyncio.run(_cycles(urls, client_id, client_secret, warmup, numbers))
    count = calibrate(elapsed / warmup, options, low=options.size(2 * WORKERS, WORKERS), high=4000)
    ctx.advance()
    series = Series()
    for _ in range(options.repeat):
        series.add_run(count, asyncio.run(_cycles(urls, client_id, client_secret, count, numbers)))
        ctx.advance()
    return series


def _register(client: httpx.Client, urls: list[str], admin: dict[str, str], number: int) -> tuple[str, str]:
    """Launch token and registration on the first replica, the challenge from the second."""
    launch = check(
        client.post(
            urls[0] + "/v1/admin/launch-tokens",
            json={"agent_name": "bench-prop", "allowed_scope": ["read:bench:*"]},
            headers=admin,
        ),
        "launch token",
    )
    challenge = check(client.get(urls[1] + "/v1/challenge"), "challenge")
    registered = check(
        client.post(urls[0] + "/v1/register", json=_register_request(launch, challenge, number)), "register"
    )
    return str(registered["agent_id"]), str(registered["access_token"])


def _valid(client: httpx.Client, url: str, token: str) -> bool:
    return bool(check(client.post(url + "/v1/token/validate", json={"token": token}), "validate")["valid"])


def _propagation(ctx: Context, urls: list[str], admin: dict[str, str], rounds: int) -> Latencies:
    latencies = Latencies()
    run = latencies.new_run()
    with httpx.Client(timeout=30.0) as client:
        for n in range(rounds):
            source, target = (urls[0], urls[1]) if n % 2 == 0 else (urls[1], urls[0])
            agent_id, token = _register(client, [source, target], admin, n)
            if not _valid(client, target, token):
                raise RuntimeError("a fresh token did not validate on the other replica")
            revoke = client.post(source + "/v1/revoke", json={"level": "agent", "target": agent_id}, headers=admin)
            check(revoke, "revoke")
            acknowledged = time.perf_counter()
            while _valid(client, target, token):
                if time.perf_counter() - acknowledged > 10:
                    raise RuntimeError("a revocation did not reach the other replica in 10 s")
            run.append(time.perf_counter() - acknowledged)
            ctx.advance()
    return latencies


@contextlib.contextmanager
def _replicas(database_url: str, count: int, env: dict[str, str]) -> Iterator[list[BrokerProcess]]:
    secret = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(BrokerProcess(database_url=database_url, admin_secret=secret, env=env))
            for _ in range(count)
        ]


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    rounds = options.size(60, 6)
    ctx.phase(
        "replicas: cycles/s at c64 on SQLite, PG x1, PG x2; revocation propagation",
        3 * (options.repeat + 1) + 2 * rounds,
    )
    figures: list[Figure] = []
    with BrokerProcess() as sqlite:
        app = setup_app(sqlite)
        series = _throughput(ctx, [sqlite.url], app.client_id, app.client_secret)
    figures.append(series.figure("replicas_cycles_per_s_sqlite", f"mint+release cycles/s, {WORKERS} callers, SQLite"))
    env = {"AGENTWRIT_KEYRING_SECRET": KEYRING}
    rates: dict[int, Series] = {}
    with LocalPostgres() as postgres:
        for count in (1, 2):
            with postgres.database("bench") as url, _replicas(url, count, env) as processes:
                app = setup_app(processes[0])
                urls = [process.url for process in processes]
                rates[count] = _throughput(ctx, urls, app.client_id, app.client_secret)
                label = "one replica" if count == 1 else "two replicas"
                figures.append(
                    rates[count].figure(
                        f"replicas_cycles_per_s_pg{count}",
                        f"mint+release cycles/s, {WORKERS} callers, PostgreSQL, {label}",
                    )
                )
                if count == 2:
                    notify = _propagation(ctx, urls, app.admin_headers, rounds)
        with (
            postgres.database("bench") as url,
            _replicas(url, 2, {**env, "AGENTWRIT_REVOCATION_NOTIFY": "false"}) as processes,
        ):
            app = setup_app(processes[0])
            polled = _propagation(ctx, [process.url for process in processes], app.admin_headers, rounds)
    one, two = statistics.median(rates[1].rates), statistics.median(rates[2].rates)
    figures.append(
        Figure(
            key="replicas_scaling_pg2_over_pg1",
            label="two replicas / one (goal >= 1.6)",
            value=two / one,
            spread=(min(rates[2].rates) / max(rates[1].rates), max(rates[2].rates) / min(rates[1].rates)),
            unit="x",
            repeats=options.repeat,
            operations=rates[1].operations + rates[2].operations,
        )
    )
    figures += notify.figures("revocation_propagation_notify_ms", "revocation propagation, LISTEN/NOTIFY")
    figures += polled.figures("revocation_propagation_poll_ms", "revocation propagation, polling every 0.25 s")
    return figures


BENCHMARK = Benchmark(
    name="replicas",
    title="Broker on PostgreSQL: throughput on one and two replicas, revocation propagation between them",
    note=(
        "Cycles: AsyncBroker.mint (launch token, challenge, register) + release, 64 concurrent callers split over "
        "the replicas. Propagation: revoke acknowledged on one replica -> first refusal by the other's validate. "
        "Client, replicas and PostgreSQL share the machine's cores."
    ),
    run=run,
)
