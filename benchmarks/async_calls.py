"""Guarded calls per second through one ``AsyncBroker`` at 1, 8 and 64 concurrent calls.

Each call is ``await task.acall(noop, {...})`` — the whole per-call flow, a credential minted under the task's
launch token (register, with the nonce fetched ahead) and released after the (async, no-op) body: one mint +
release cycle at the broker. N asyncio tasks share one ``AsyncBroker`` with its default settings and one
``Task``, the way an agent loop running parallel tool calls would. The broker is a single process serving one
SQLite connection, so past a few concurrent calls the figure is the broker's capacity; what the client must not
do is lose throughput as concurrency grows. At 64 the latency of every call is kept too (p50, p99 and their
ratio), and calls that did not succeed are counted, not raised.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from agentwrit_tools.client import AsyncBroker
from agentwrit_tools.guard import Task, scoped_tool

from ._broker import BrokerProcess, setup_app
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, Series, calibrate

__all__ = ["BENCHMARK", "CONCURRENCY", "run"]

CONCURRENCY = (1, 8, 64)


@scoped_tool("read:bench:{item}")
async def noop(item: str) -> str:
    """Does nothing, asynchronously."""
    return item


async def _burst(
    task: Task,
    count: int,
    workers: int,
    numbers: itertools.count[int],
    latencies: list[float] | None = None,
    errors: list[str] | None = None,
) -> float:
    """``count`` calls by ``workers`` concurrent tasks; their latencies and failures go where given (else a
    failure raises)."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1  # no await between the test and the decrement: two workers never take the last one
            started = time.perf_counter()
            result = await task.acall(noop, {"item": f"item-{next(numbers)}"})
            if latencies is not None:
                latencies.append(time.perf_counter() - started)
            if not result.ok:
                if errors is None:
                    raise RuntimeError(f"a guarded call failed: {result.error_kind} {result.message}")
                errors.append(str(result.error_kind))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(workers, count))))
    return time.perf_counter() - start


async def _measure(
    ctx: Context, url: str, client_id: str, client_secret: str, workers: int
) -> tuple[Series, Latencies, list[str]]:
    options = ctx.options
    numbers = itertools.count()
    series = Series()
    latencies = Latencies()
    errors: list[str] = []
    broker = AsyncBroker(url, client_id, client_secret)
    async with broker, Task(broker, orch_id="bench", task_id=f"async-c{workers}", ceiling="read:bench:*") as task:
        warmup = max(2 * workers, 16)
        elapsed = await _burst(task, warmup, workers, numbers)
        count = calibrate(elapsed / warmup, options, low=options.size(max(2 * workers, 100), workers), high=5000)
        ctx.advance()
        for _ in range(options.repeat):
            elapsed = await _burst(task, count, workers, numbers, latencies.new_run(), errors)
            series.add_run(count, elapsed)
            ctx.advance()
    return series, latencies, errors


def run(ctx: Context) -> list[Figure]:
    ctx.phase("async: guarded calls/s at c1, c8, c64", len(CONCURRENCY) * (ctx.options.repeat + 1))
    figures = []
    with BrokerProcess() as process:
        app = setup_app(process)
        for workers in CONCURRENCY:
            series, latencies, errors = asyncio.run(
                _measure(ctx, process.url, app.client_id, app.client_secret, workers)
            )
            figures.append(series.figure(f"async_calls_per_s_c{workers}", f"guarded calls/s, {workers} concurrent"))
    last = CONCURRENCY[-1]
    p50, p99 = latencies.stat(0.5)[0], latencies.stat(0.99)[0]
    figures += [
        *latencies.figures(f"async_call_latency_ms_c{last}", f"latency of a call, {last} concurrent"),
        Figure(f"async_call_p99_vs_p50_c{last}", f"p99 / p50 at {last} concurrent", p99 / p50, (p99 / p50,) * 2,
               "x", len(latencies.runs), len(latencies.samples)),
        Figure(f"async_call_errors_c{last}", f"calls that failed at {last} concurrent", float(len(errors)),
               (float(len(errors)),) * 2, "calls", len(latencies.runs), len(latencies.samples)),
    ]  # fmt: skip
    return figures


BENCHMARK = Benchmark(
    name="async",
    title="Async throughput: guarded calls per second through one AsyncBroker",
    note=(
        "N asyncio tasks share one AsyncBroker (default settings) and one Task; each call mints under the "
        "task's launch token (challenge + register), runs an async no-op, releases. One CLI-started broker."
    ),
    run=run,
)
