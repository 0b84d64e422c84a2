"""Broker throughput over the raw wire: agent registrations per second and token validations per second.

A registration is the whole sequence an agent goes through: an app asks for a launch token, the agent fetches a
challenge, signs the nonce with a fresh Ed25519 key and registers. Validation is ``POST /v1/token/validate`` of
a live agent token. Both are measured one at a time over a pooled ``httpx.Client`` and with ``workers``
concurrent tasks over one ``httpx.AsyncClient``; each measurement is repeated and reported as the median.

The client runs in the same Python process family on the same machine, so the figures are what a Python client
sees from a broker on loopback, client cost included (key generation and signing are part of a registration).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._broker import App, BrokerProcess, check, setup_app
from ._harness import Benchmark, Context, Figure, Options
from ._timing import Series, calibrate

__all__ = ["BENCHMARK", "run"]

SCOPE_CEILING = "read:bench:*"
WARMUP_OPERATIONS = 10
# Bounds on the operations of one repetition, whatever the calibration says.
REGISTRATIONS_RANGE = (20, 400)
VALIDATIONS_RANGE = (50, 4000)
TOKEN_POOL = 32  # distinct agent tokens the validations cycle through
TIMEOUT = httpx.Timeout(30.0)


def _launch_request(number: int) -> dict[str, object]:
    return {"agent_name": f"bench-{number}", "allowed_scope": [SCOPE_CEILING], "max_ttl": 300}


def _register_request(launch: dict[str, object], challenge: dict[str, object], number: int) -> dict[str, object]:
    key = Ed25519PrivateKey.generate()
    signature = key.sign(bytes.fromhex(str(challenge["nonce"])))
    return {
        "launch_token": launch["launch_token"],
        "nonce": challenge["nonce"],
        "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
        "orch_id": "bench-orch",
        "task_id": f"bench-task-{number}",
        "requested_scope": [f"read:bench:item-{number}"],
    }


def register(client: httpx.Client, app: App, number: int) -> str:
    """One full registration; returns the agent's access token."""
    launch = check(client.post("/v1/app/launch-tokens", json=_launch_request(number), headers=app.headers), "launch")
    challenge = check(client.get("/v1/challenge"), "challenge")
    body = _register_request(launch, challenge, number)
    return str(check(client.post("/v1/register", json=body), "register")["access_token"])


async def register_async(client: httpx.AsyncClient, app: App, number: int) -> str:
    launch = check(
        await client.post("/v1/app/launch-tokens", json=_launch_request(number), headers=app.headers), "launch"
    )
    challenge = check(await client.get("/v1/challenge"), "challenge")
    body = _register_request(launch, challenge, number)
    return str(check(await client.post("/v1/register", json=body), "register")["access_token"])


def validate(client: httpx.Client, token: str) -> None:
    if check(client.post("/v1/token/validate", json={"token": token}), "validate").get("valid") is not True:
        raise RuntimeError("a live agent token did not validate")


async def validate_async(client: httpx.AsyncClient, token: str) -> None:
    body = check(await client.post("/v1/token/validate", json={"token": token}), "validate")
    if body.get("valid") is not True:
        raise RuntimeError("a live agent token did not validate")


def _sequential(operation: Callable[[int], object], count: int, numbers: itertools.count[int]) -> list[float]:
    latencies: list[float] = []
    for _ in range(count):
        number = next(numbers)
        start = time.perf_counter()
        operation(number)
        latencies.append(time.perf_counter() - start)
    return latencies


def measure_sequential(
    operation: Callable[[int], object], options: Options, bounds: tuple[int, int], numbers: itertools.count[int]
) -> Series:
    warmup = _sequential(operation, WARMUP_OPERATIONS, numbers)
    count = calibrate(sum(warmup) / len(warmup), options, low=bounds[0], high=bounds[1])
    series = Series()
    for _ in range(options.repeat):
        start = time.perf_counter()
        latencies = _sequential(operation, count, numbers)
        series.add_run(count, time.perf_counter() - start, latencies)
    return series


async def _concurrent(
    operation: Callable[[int], Awaitable[object]], count: int, workers: int, numbers: itertools.count[int]
) -> tuple[float, list[float]]:
    remaining = count
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1  # no await between the test and the decrement: tasks cannot both take the last one
            number = next(numbers)
            start = time.perf_counter()
            await operation(number)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - start, latencies


async def measure_concurrent(
    operation: Callable[[int], Awaitable[object]],
    options: Options,
    bounds: tuple[int, int],
    numbers: itertools.count[int],
) -> Series:
    warmup_count = WARMUP_OPERATIONS * options.workers
    elapsed, _ = await _concurrent(operation, warmup_count, options.workers, numbers)
    count = calibrate(elapsed / warmup_count, options, low=bounds[0], high=bounds[1])
    series = Series()
    for _ in range(options.repeat):
        elapsed, latencies = await _concurrent(operation, count, options.workers, numbers)
        series.add_run(count, elapsed, latencies)
    return series


async def _measure_concurrently(url: str, app: App, tokens: Sequence[str], options: Options) -> tuple[Series, Series]:
    limits = httpx.Limits(max_connections=options.workers, max_keepalive_connections=options.workers)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=TIMEOUT) as client:
        numbers = itertools.count(1_000_000)
        registrations = await measure_concurrent(
            lambda n: register_async(client, app, n), options, REGISTRATIONS_RANGE, numbers
        )
        validations = await measure_concurrent(
            lambda n: validate_async(client, tokens[n % len(tokens)]), options, VALIDATIONS_RANGE, numbers
        )
    return registrations, validations


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    ctx.phase("broker: start, register a token pool", 5)
    with BrokerProcess() as broker, httpx.Client(base_url=broker.url, timeout=TIMEOUT) as client:
        app = setup_app(broker)
        numbers = itertools.count(1)
        tokens = [register(client, app, next(numbers)) for _ in range(TOKEN_POOL)]
        ctx.advance()
        registrations = measure_sequential(lambda n: register(client, app, n), options, REGISTRATIONS_RANGE, numbers)
        ctx.advance()
        validations = measure_sequential(
            lambda n: validate(client, tokens[n % len(tokens)]), options, VALIDATIONS_RANGE, numbers
        )
        ctx.advance()
        registrations_c, validations_c = asyncio.run(_measure_concurrently(broker.url, app, tokens, options))
        ctx.advance(2)

    workers = options.workers
    return [
        registrations.figure("broker_registrations_per_s", "register, one at a time"),
        registrations_c.figure(f"broker_registrations_per_s_c{workers}", f"register, {workers} concurrent"),
        validations.figure("broker_validate_per_s", "validate, one at a time"),
        validations_c.figure(f"broker_validate_per_s_c{workers}", f"validate, {workers} concurrent"),
    ]


BENCHMARK = Benchmark(
    name="broker",
    title="Broker throughput: agentwrit-tools broker serve on 127.0.0.1",
    note=(
        "register = launch token + challenge + Ed25519-signed register; validate = POST /v1/token/validate. "
        "seq: one at a time over a pooled httpx.Client; cN: N concurrent tasks over one httpx.AsyncClient. "
        "Client and broker share the machine."
    ),
    run=run,
)
