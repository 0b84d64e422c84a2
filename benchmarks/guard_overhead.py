"""What the guard adds to a tool call, next to the crypto floor, and how long a credential outlives its work.

*Wrapped call overhead*: ``task.call(noop, {...})`` — validate the arguments, render the scope, check the
ceiling, mint under the task's launch token (challenge + register), verify and gate on the claims, run the
no-op body, release — minus calling the body bare. Interleaved round by round with the bare call and with the
crypto floor (:mod:`benchmarks._crypto`), so the ratio between them comes from the same moments.

*Overhang* and *exposure ratio*: a tool whose backend takes 50 ms (a sleep). Overhang is the credential's
window (mint to release) minus the tool's run time; the ratio is window / run time (1.0 would be a credential
that lives exactly as long as the work), both from the task's own trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agentwrit_tools.client import Broker
from agentwrit_tools.guard import Task, scoped_tool

from ._broker import BrokerProcess, setup_app
from ._crypto import CryptoFloor
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, interleave, paired_difference, ratio_figure

__all__ = ["BENCHMARK", "run"]

BACKEND_SECONDS = 0.05
WARMUP = 20


@scoped_tool("read:bench:{item}")
def noop(item: str) -> str:
    """Does nothing: what a call costs beyond this is the guard's."""
    return item


@scoped_tool("read:bench:{item}")
def slow_backend(item: str) -> str:
    """Stands for a tool whose backend answers in 50 ms."""
    time.sleep(BACKEND_SECONDS)
    return item


def _task(broker: Broker, name: str) -> Task:
    return Task(broker, orch_id="bench", task_id=name, ceiling="read:bench:*", tools=[noop, slow_backend])


def _measure_overhead(ctx: Context, broker: Broker) -> dict[str, Latencies]:
    options = ctx.options
    floor = CryptoFloor()
    latencies = {"wrapped": Latencies(), "bare": Latencies(), "floor": Latencies()}
    for rep in range(options.repeat + 1):  # the first repetition is a warm-up
        with _task(broker, f"overhead-{rep}") as task:

            def wrapped(n: int, task: Task = task) -> None:
                result = task.call(noop, {"item": f"item-{n}"})
                if not result.ok:
                    raise RuntimeError(f"the wrapped call failed: {result.error_kind} {result.message}")

            def bare(n: int) -> None:
                noop.fn(item=f"item-{n}")

            operations: dict[str, Callable[[int], object]] = {"wrapped": wrapped, "bare": bare, "floor": floor}
            target = latencies if rep else {name: Latencies() for name in latencies}
            interleave(operations, options.size(WARMUP if not rep else 300, 5), target)
        ctx.advance()
    return latencies


def _measure_exposure(ctx: Context, broker: Broker) -> tuple[Latencies, Latencies]:
    options = ctx.options
    overhang, ratio = Latencies(), Latencies()
    calls = options.size(20, 3)
    for rep in range(options.repeat):
        with _task(broker, f"exposure-{rep}") as task:
            for n in range(calls):
                result = task.call(slow_backend, {"item": f"item-{n}"})
                if not result.ok:
                    raise RuntimeError(f"the backend call failed: {result.error_kind} {result.message}")
            report = task.exposure()
        overhang.runs.append([c.overhang for c in report.calls if c.overhang is not None])
        ratio.runs.append([c.ratio for c in report.calls if c.ratio is not None])
        ctx.advance()
    return overhang, ratio


def run(ctx: Context) -> list[Figure]:
    ctx.phase("guard: wrapped vs bare call vs crypto floor; 50 ms backend", 2 * ctx.options.repeat + 1)
    with BrokerProcess() as process:
        app = setup_app(process)
        with Broker(process.url, app.client_id, app.client_secret) as broker:
            latencies = _measure_overhead(ctx, broker)
            overhang, ratio = _measure_exposure(ctx, broker)
    overhead = paired_difference(latencies["wrapped"], latencies["bare"])
    ctx.keep("wrapped call (guard + no-op)", latencies["wrapped"].samples)
    ctx.keep("bare call (no-op)", latencies["bare"].samples)
    ctx.keep("crypto floor", latencies["floor"].samples)
    return [
        latencies["floor"].figure("crypto_floor_us", "crypto floor: keygen + sign + verify + JWT encode", unit="us"),
        *overhead.figures("wrapped_call_overhead_ms", "wrapped call overhead (wrapped - bare)"),
        latencies["bare"].figure("bare_call_us_p50", "bare call, p50", unit="us"),
        ratio_figure(
            "wrapped_overhead_vs_crypto_floor", "wrapped overhead / crypto floor, p50", overhead, latencies["floor"]
        ),
        overhang.figure("overhang_ms_p50", "overhang with a 50 ms backend (window - run time), p50"),
        ratio.figure("exposure_ratio_p50", "exposure ratio (window / run time), p50", unit="x"),
    ]


BENCHMARK = Benchmark(
    name="guard",
    title="The guard: per-call overhead, crypto floor, credential overhang",
    note=(
        "Sync Broker + Task on one CLI-started broker (127.0.0.1); wrapped, bare and floor interleaved. "
        "Per call the guard mints under the task's launch token: challenge + register + release."
    ),
    run=run,
)
