"""One credential's whole life from a client's point of view — mint it, release it — ours vs the official client.

Both clients talk to the same broker process, with the same app, asking for the same kind of credential (a fresh
``read:bench:item-N`` scope, the same max TTL). One round times one mint+release of each, in alternating order,
so both see the same machine. The round trips are the same on both sides: a launch token, a challenge, the
registration and the release. What differs is the client: ours also verifies the issued token's signature and
gates on its claims (the official client reports the scope it asked for), and runs every call through one
I/O-free flow core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agentwrit import AgentWritApp

from agentwrit_tools.client import Broker

from ._broker import BrokerProcess, setup_app
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, interleave, ratio_figure

__all__ = ["BENCHMARK", "run"]

TTL = 300  # the official client's default max_ttl; ours asks for the same lifetime
WARMUP = 20


def _operations(ours: Broker, official: AgentWritApp) -> dict[str, Callable[[int], object]]:
    counter = iter(range(10**9))

    def ours_once(_: int) -> None:
        n = next(counter)
        with ours.mint(f"read:bench:item-{n}", orch_id="bench", task_id=f"task-{n}", ttl=TTL):
            pass

    def official_once(_: int) -> None:
        n = next(counter)
        agent = official.create_agent("bench", f"task-{n}", [f"read:bench:item-{n}"], max_ttl=TTL)
        agent.release()

    return {"ours": ours_once, "official": official_once}


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    rounds = 10
    ctx.phase("mint+release: ours vs official", options.repeat + 1)
    latencies = {"ours": Latencies(), "official": Latencies()}
    with BrokerProcess() as broker:
        app = setup_app(broker)
        ours = Broker(broker.url, app.client_id, app.client_secret)
        official = AgentWritApp(broker.url, app.client_id, app.client_secret)
        try:
            operations = _operations(ours, official)
            warm = {"ours": Latencies(), "official": Latencies()}
            start = time.perf_counter()
            interleave(operations, options.size(WARMUP, 3), warm)
            per_round = (time.perf_counter() - start) / options.size(WARMUP, 3)
            if not options.quick:  # about three seconds a repetition, and enough rounds for an honest p99
                rounds = max(300, min(800, int(3 * options.seconds / per_round)))
            ctx.advance()
            for _ in range(options.repeat):
                interleave(operations, rounds, latencies)
                ctx.advance()
        finally:
            ours.close()
            official.close()
    ctx.keep("ours: mint+release", latencies["ours"].samples)
    ctx.keep("official: create_agent+release", latencies["official"].samples)
    return [
        *latencies["ours"].figures("ours_mint_release_ms", "ours: mint + release"),
        *latencies["official"].figures("official_mint_release_ms", "official: create_agent + release"),
        ratio_figure("ours_vs_official_p50_ratio", "ours / official, p50", latencies["ours"], latencies["official"]),
        ratio_figure(
            "ours_vs_official_p99_ratio",
            "ours / official, p99",
            latencies["ours"],
            latencies["official"],
            fraction=0.99,
        ),
    ]


BENCHMARK = Benchmark(
    name="mint",
    title="Mint + release: our client vs the official agentwrit==0.3.0 client, same broker",
    note=(
        "Interleaved round by round on one CLI-started broker (127.0.0.1). Both: launch token, challenge, "
        "register, release; ours also verifies the token's signature and gates on its claims."
    ),
    run=run,
)
