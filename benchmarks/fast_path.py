"""The per-call fast path: a whole wrapped tool call against the official client's mint + release, in one run.

One CLI-started broker with our extensions, one with ``--no-extensions`` (the reference contract, where the fast
path falls back). On each, one round times, in rotating order:

* *wrapped* — ``task.call(noop, {...})``, the whole guarded call: validate, render, check the ceiling, mint
  (register, with the nonce and the task's launch token fetched ahead), verify and gate on the claims, run the
  no-op, release;
* *official* — ``create_agent()`` + ``release()`` of the official ``agentwrit==0.3.0`` client: launch token,
  challenge, register, release, with no verification;
* *without fast path* (our broker only) — the same wrapped call with the fast path off: an httpx client, nothing
  fetched ahead (a challenge on every call), the pre-fast-path client;
* *crypto floor* — the signing work no mint can avoid, in process.

The ratios are per repetition (same moments, same machine load) and their median is reported. Round trips per
call are read from the task's own trace: the requests its mint made on the call's path, plus its release.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
from agentwrit import AgentWritApp

from agentwrit_tools.client import Broker
from agentwrit_tools.guard import Task
from agentwrit_tools.trace import Minted

from ._broker import BrokerProcess, setup_app
from ._crypto import CryptoFloor
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, interleave, ratio_figure
from .guard_overhead import noop

__all__ = ["BENCHMARK", "run"]

TTL = 300
WARMUP = 30


def _round_trips(task: Task) -> list[float]:
    """Per call: the requests its mint made on the call's path, plus the release."""
    return [float(e.round_trips + 1) for e in task.events if isinstance(e, Minted) and e.round_trips is not None]


@contextmanager
def _clients(broker: BrokerProcess, fast_off: bool) -> Iterator[dict[str, Callable[[int], object]]]:
    app = setup_app(broker)
    with ExitStack() as stack:
        ours = stack.enter_context(Broker(broker.url, app.client_id, app.client_secret))
        official = AgentWritApp(broker.url, app.client_id, app.client_secret)
        stack.callback(official.close)
        task = stack.enter_context(Task(ours, orch_id="bench", task_id="fast", ceiling="read:bench:*", ttl=TTL))
        counter = iter(range(10**9))

        def wrapped(_: int, task: Task = task) -> None:
            if not task.call(noop, {"item": f"item-{next(counter)}"}).ok:
                raise RuntimeError("a wrapped call failed")

        def official_once(_: int) -> None:
            n = next(counter)
            official.create_agent("bench", f"task-{n}", [f"read:bench:item-{n}"], max_ttl=TTL).release()

        operations: dict[str, Callable[[int], object]] = {"wrapped": wrapped, "official": official_once}
        if fast_off:
            plain = stack.enter_context(
                Broker(broker.url, app.client_id, app.client_secret, prefetch=False, http_client=httpx.Client())
            )
            slow_task = stack.enter_context(Task(plain, orch_id="bench", task_id="slow", ceiling="read:bench:*"))

            def slow(_: int, task: Task = slow_task) -> None:
                if not task.call(noop, {"item": f"item-{next(counter)}"}).ok:
                    raise RuntimeError("a wrapped call without the fast path failed")

            operations["without fast path"] = slow
        operations["floor"] = CryptoFloor()
        operations["_task"] = lambda _: task  # not timed: hands the task to the caller
        yield operations


def _measure(ctx: Context, extensions: bool) -> tuple[dict[str, Latencies], list[float]]:
    options = ctx.options
    names = ["wrapped", "official", "floor"] + (["without fast path"] if extensions else [])
    latencies = {name: Latencies() for name in names}
    with BrokerProcess(extensions=extensions) as broker, _clients(broker, extensions) as operations:
        task = operations.pop("_task")(0)
        assert isinstance(task, Task)
        interleave(operations, options.size(WARMUP, 3), {name: Latencies() for name in names})
        ctx.advance()
        rounds = options.size(300, 5)
        for _ in range(options.repeat):
            interleave(operations, rounds, latencies)
            ctx.advance()
        trips = _round_trips(task)[-rounds * options.repeat :]
    return latencies, trips


def _trips_figure(key: str, label: str, trips: list[float]) -> Figure:
    value = statistics.median(trips)
    return Figure(key, label, value, (min(trips), max(trips)), "requests", 1, len(trips))


def run(ctx: Context) -> list[Figure]:
    ctx.phase("fast path: wrapped call vs official, our broker and --no-extensions", 2 * (ctx.options.repeat + 1))
    ours, trips = _measure(ctx, extensions=True)
    reference, reference_trips = _measure(ctx, extensions=False)
    ctx.keep("wrapped call (fast path)", ours["wrapped"].samples)
    ctx.keep("wrapped call (without fast path)", ours["without fast path"].samples)
    ctx.keep("official, in the same rounds", ours["official"].samples)
    wrapped, official, floor = ours["wrapped"], ours["official"], ours["floor"]
    return [
        *wrapped.figures("fastpath_wrapped_call_ms", "wrapped no-op call, fast path"),
        *official.figures("fastpath_official_ms", "official create_agent + release"),
        ours["without fast path"].figure("fastpath_off_wrapped_call_ms_p50", "wrapped call without the fast path, p50"),
        ratio_figure("fastpath_wrapped_vs_official_p50_ratio", "wrapped call / official, p50", wrapped, official),
        ratio_figure(
            "fastpath_wrapped_vs_official_p99_ratio", "wrapped call / official, p99", wrapped, official, fraction=0.99
        ),
        ratio_figure("fastpath_wrapped_vs_crypto_floor", "wrapped call / crypto floor, p50", wrapped, floor),
        ratio_figure("fastpath_on_vs_off_p50_ratio", "fast path on / off, p50", wrapped, ours["without fast path"]),
        _trips_figure("fastpath_round_trips_per_call", "round trips per call on its path (median)", trips),
        reference["wrapped"].figure("reference_wrapped_call_ms_p50", "--no-extensions: wrapped call, p50"),
        reference["official"].figure("reference_official_ms_p50", "--no-extensions: official, p50"),
        ratio_figure(
            "reference_wrapped_vs_official_p50_ratio",
            "--no-extensions: wrapped call / official, p50",
            reference["wrapped"],
            reference["official"],
        ),
        _trips_figure(
            "reference_round_trips_per_call", "--no-extensions: round trips per call (median)", reference_trips
        ),
    ]


BENCHMARK = Benchmark(
    name="fastpath",
    title="The per-call fast path: a whole wrapped call vs the official client's mint + release, same broker, same run",
    note=(
        "Interleaved round by round on CLI-started brokers (127.0.0.1), with our extensions and with "
        "--no-extensions. Wrapped: register + release on the call's path (nonce and launch token fetched ahead), "
        "verified and gated; official: launch token, challenge, register, release, unverified."
    ),
    run=run,
)
