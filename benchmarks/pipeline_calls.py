"""A pipeline stage's tool call: its round trips and its latency, on our broker and on ``--no-extensions``.

A two-stage pipeline (triage → knowledge, the second narrower) runs repeatedly; each stage first waits a little,
as a stage's model would before its first tool call, then makes tool calls with a no-op tool. Each call's
credential is delegated from its stage's token to a freshly registered agent: on its path the registration and the
delegation (the nonce and the stage's launch token fetched ahead; the registration token released off the path),
then the guard's release. The round trips come from the run's own trace (the requests the call's mint made, plus
its release); the latency is ``ctx.call`` as the stage's body sees it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from agentwrit_tools.client import Broker
from agentwrit_tools.guard import scoped_tool
from agentwrit_tools.pipeline import Pipeline, Stage, StageContext
from agentwrit_tools.trace import Minted

from ._broker import BrokerProcess, setup_app
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies

__all__ = ["BENCHMARK", "run"]

MODEL_PAUSE = 0.05  # a stage's model answers before its first tool call


@scoped_tool("read:bench:{item}")
def lookup(item: str) -> str:
    """Does nothing: what a stage's call costs beyond this is the pipeline's and the guard's."""
    return item


def _pipeline(calls: int, latencies: list[float]) -> Pipeline:
    def body(ctx: StageContext) -> Any:
        time.sleep(MODEL_PAUSE)
        for n in range(calls):
            started = time.perf_counter()
            result = ctx.call(lookup, {"item": f"{ctx.stage.name}-{n}"})
            latencies.append(time.perf_counter() - started)
            if not result.ok:
                raise RuntimeError(f"a stage's tool call failed: {result.error_kind} {result.message}")
        return ctx.input

    return Pipeline([Stage("triage", "read:bench:*", body), Stage("knowledge", "read:bench:*", body)])


def _measure(ctx: Context, extensions: bool) -> tuple[Latencies, list[float]]:
    options = ctx.options
    latencies, trips = Latencies(), []
    calls = options.size(20, 3)
    with BrokerProcess(extensions=extensions) as broker:
        app = setup_app(broker)
        with Broker(broker.url, app.client_id, app.client_secret) as client:
            for rep in range(options.repeat + 1):  # the first is a warm-up
                run: list[float] = latencies.new_run() if rep else []
                result = _pipeline(calls, run).run(
                    client, None, orch_id="bench", task_id=f"pipe-{rep}", ceiling="read:bench:*"
                )
                if rep:
                    trips += [
                        float(e.round_trips + 1)
                        for e in result.events
                        if isinstance(e, Minted) and e.round_trips is not None
                    ]
                ctx.advance()
    return latencies, trips


def _trips(key: str, label: str, trips: list[float]) -> Figure:
    return Figure(key, label, statistics.median(trips), (min(trips), max(trips)), "requests", 1, len(trips))


def run(ctx: Context) -> list[Figure]:
    ctx.phase("pipeline: a stage's tool call, our broker and --no-extensions", 2 * (ctx.options.repeat + 1))
    ours, trips = _measure(ctx, extensions=True)
    reference, reference_trips = _measure(ctx, extensions=False)
    ctx.keep("pipeline stage tool call", ours.samples)
    return [
        _trips("pipeline_call_round_trips", "a stage's tool call: round trips on its path (median)", trips),
        *ours.figures("pipeline_call_ms", "a stage's tool call"),
        _trips("reference_pipeline_call_round_trips", "--no-extensions: round trips (median)", reference_trips),
        reference.figure("reference_pipeline_call_ms_p50", "--no-extensions: a stage's tool call, p50"),
    ]


BENCHMARK = Benchmark(
    name="pipeline",
    title="Pipeline: a stage's tool call, credential delegated from the stage's token",
    note=(
        "Two-stage pipelines on CLI-started brokers (127.0.0.1), sync Broker. On the call's path: register + "
        "delegate + release (the reference contract adds a validate per issued token: no JWKS there)."
    ),
    run=run,
)
