"""What proof of possession costs: a key-bound mint beside a bearer one, making a proof, checking one.

* mint + release, key-bound vs bearer: ``Broker(proof_of_possession=True).mint`` (the broker binds the token to the
  registered key; the client checks ``cnf.jkt`` against its own key) against a plain mint, interleaved;
* proof: ``credential.headers_for`` — one Ed25519 signature over a small JWS;
* resource check, key-bound vs bearer: ``resource.require`` with local verification (JWKS + feed), for a bound
  token with a fresh proof (proof parsed, key checked, signature verified, replay cache) against a bearer token.

All on a CLI-started broker over 127.0.0.1; the check pairs run interleaved, proofs made ahead of each repetition.
One credential presents many proofs here, so its key's small-order check (about 120 µs of Python big-integer
arithmetic) is paid once and then cached, as it is for every further request of a real credential; a credential's
first request pays it in addition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agentwrit_tools.client import Broker
from agentwrit_tools.resource import require

from ._broker import BrokerProcess, setup_app
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, interleave

__all__ = ["BENCHMARK", "run"]

URL = "https://api.bench.test/items/item-1"
SCOPE = "read:bench:{item}"
WARMUP = 20


def _checks(key_bound: Any, bearer: Any, verifier: Broker, proofs: list[str]) -> dict[str, Callable[[int], object]]:
    """One repetition's operations: round ``i`` checks the bound token with ``proofs[i]`` (each used once)."""
    params = {"item": "item-1"}

    def bound_check(i: int) -> object:
        return require(
            verifier,
            key_bound.access_token,
            SCOPE,
            params=params,
            access_log=None,
            dpop=proofs[i],
            method="GET",
            url=URL,
        )

    return {
        "proof": lambda _: key_bound.headers_for("GET", URL),
        "bound check": bound_check,
        "bearer check": lambda _: require(verifier, bearer.access_token, SCOPE, params=params, access_log=None),
    }


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    ctx.phase("proof of possession: mint, proof, check", 2 * options.repeat + 1)
    names = ("bound mint", "bearer mint", "proof", "bound check", "bearer check")
    latencies = {name: Latencies() for name in names}
    with BrokerProcess() as process:
        app = setup_app(process)
        bound = Broker(process.url, app.client_id, app.client_secret, proof_of_possession=True)
        plain = Broker(process.url, app.client_id, app.client_secret)
        verifier = Broker(process.url, app.client_id, app.client_secret)
        ids = {"orch_id": "bench", "task_id": "pop"}
        try:
            mints = {
                "bound mint": lambda _: bound.mint("read:bench:item-1", **ids).release(),
                "bearer mint": lambda _: plain.mint("read:bench:item-1", **ids).release(),
            }
            interleave(mints, options.size(WARMUP, 3), {name: Latencies() for name in mints})
            ctx.advance()
            for _ in range(options.repeat):
                interleave(mints, options.size(150, 5), latencies)
                ctx.advance()
            with (
                bound.mint("read:bench:item-1", ttl=3600, **ids) as key_bound,
                plain.mint("read:bench:item-1", ttl=3600, **ids) as bearer,
            ):
                if not key_bound.key_bound:
                    raise RuntimeError("the broker did not bind the token: is it running without extensions?")
                for _ in range(options.repeat):
                    count = options.size(400, 10)
                    proofs = [key_bound.headers_for("GET", URL)["DPoP"] for _ in range(count)]
                    checks = _checks(key_bound, bearer, verifier, proofs)
                    interleave(checks, count, latencies)
                    ctx.advance()
        finally:
            for client in (bound, plain, verifier):
                client.close()
    if verifier.verification_mode != "local":
        raise RuntimeError(f"verification was expected to be local, not {verifier.verification_mode}")
    bound_check, bearer_check = latencies["bound check"], latencies["bearer check"]
    overhead = Latencies(
        runs=[
            [b - p for b, p in zip(br, pr, strict=False)]
            for br, pr in zip(bound_check.runs, bearer_check.runs, strict=True)
        ]
    )
    ctx.keep("mint + release, key-bound", latencies["bound mint"].samples)
    ctx.keep("mint + release, bearer", latencies["bearer mint"].samples)
    return [
        latencies["bound mint"].figure("pop_mint_release_ms_p50", "mint + release, key-bound, p50"),
        latencies["bearer mint"].figure("bearer_mint_release_ms_p50", "mint + release, bearer, p50"),
        latencies["proof"].figure("pop_proof_make_us_p50", "make a proof (headers_for), p50", unit="us"),
        bound_check.figure("pop_resource_check_us_p50", "resource check, key-bound + proof, p50", unit="us"),
        bearer_check.figure("bearer_resource_check_us_p50", "resource check, bearer, p50", unit="us"),
        overhead.figure("pop_check_overhead_us_p50", "proof check overhead (paired), p50", unit="us"),
    ]


BENCHMARK = Benchmark(
    name="pop",
    title="Proof of possession: key-bound mint, making and checking a proof",
    note="Interleaved on a CLI-started broker (127.0.0.1); checks verify locally (JWKS + revocation feed).",
    run=run,
)
