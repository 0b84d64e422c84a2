"""Does a revocation check get slower as revocation rules pile up? 10 rules vs 100 000, broker and client.

Every per-call credential is released, and every release is a revocation rule that stays (rules are never
deleted: they are the revocation feed). So a busy deployment accumulates rules at the rate of its tool calls, and
each check must not grow with them.

* broker: ``Revocations.claims_revoked`` — the query every validate and every Bearer-protected call runs — on a
  database seeded with the rules (in process: a few microseconds cannot be seen through HTTP);
* client: ``RevocationSet.match`` — what local verification does with the feed it synced.

Both check a live token that matches no rule (the common case: every level is looked up). Interleaved.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from agentwrit_tools.broker._core import BrokerCore
from agentwrit_tools.broker._settings import BrokerSettings
from agentwrit_tools.client._claims import Claims
from agentwrit_tools.client._models import RevocationEntry
from agentwrit_tools.client._verify import RevocationSet

from ._harness import Benchmark, Context, Figure
from ._seed import seed_revocations
from ._timing import Latencies, interleave

__all__ = ["BENCHMARK", "run"]

SIZES = {"10": 10, "100k": 100_000}

_CLAIMS = {
    "iss": "",
    "sub": "spiffe://agentwrit.local/agent/bench/task-1/0123456789abcdef",
    "exp": 2**31,
    "nbf": 0,
    "iat": 0,
    "jti": "f" * 32,
    "scope": ["read:bench:item-1"],
    "task_id": "task-1",
    "orch_id": "bench",
}


@contextlib.contextmanager
def _broker_core(directory: Path, rules: int) -> Iterator[BrokerCore]:
    settings = BrokerSettings(admin_secret=secrets.token_urlsafe(24), db_path=directory / f"r{rules}.db")
    loop = asyncio.new_event_loop()
    core = loop.run_until_complete(BrokerCore.open(settings))
    try:
        seed_revocations(core.store.conn, rules)  # type: ignore[attr-defined]
        yield core
    finally:
        loop.run_until_complete(core.close())
        loop.close()


def _client_set(core: BrokerCore) -> RevocationSet:
    """What a client holds after syncing the whole feed of ``core``."""
    revocations = RevocationSet()
    rows = core.store.conn.execute("SELECT seq, level, target FROM revocations ORDER BY seq").fetchall()
    revocations.apply((RevocationEntry(seq=s, level=level, target=t) for s, level, t in rows), len(rows))
    return revocations


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    ctx.phase("revocation check: 10 vs 100k rules", options.repeat + 2)
    claims = Claims.model_validate(_CLAIMS)
    latencies = {f"{side}@{size}": Latencies() for side in ("broker", "client") for size in SIZES}
    with tempfile.TemporaryDirectory(prefix="agentwrit-bench-") as tmp, contextlib.ExitStack() as stack:
        cores = {label: stack.enter_context(_broker_core(Path(tmp), rules)) for label, rules in SIZES.items()}
        sets = {label: _client_set(core) for label, core in cores.items()}
        ctx.advance()
        operations = {}
        for label in SIZES:
            core, revocations = cores[label], sets[label]
            operations[f"broker@{label}"] = lambda _, core=core: _expect_live(core.revocations.claims_revoked(_CLAIMS))
            operations[f"client@{label}"] = lambda _, s=revocations: _expect_live(s.match(claims) is not None)
        interleave(operations, options.size(200, 5), {name: Latencies() for name in operations})
        ctx.advance()
        for _ in range(options.repeat):
            interleave(operations, options.size(2000, 20), latencies)
            ctx.advance()
    figures = []
    for label in SIZES:
        figures.append(
            latencies[f"broker@{label}"].figure(
                f"revocation_check_us_at_{label}", f"broker revocation check, {label} rules, p50", unit="us"
            )
        )
    for label in SIZES:
        figures.append(
            latencies[f"client@{label}"].figure(
                f"client_revocation_check_us_at_{label}", f"client revocation check, {label} rules, p50", unit="us"
            )
        )
    return figures


def _expect_live(revoked: bool) -> None:
    if revoked:
        raise RuntimeError("the live token was reported revoked")


BENCHMARK = Benchmark(
    name="revocation",
    title="Revocation checks with 10 vs 100 000 rules present",
    note="In process (SQLite file in WAL mode, the broker's own query; the client's synced feed). Interleaved.",
    run=run,
)
