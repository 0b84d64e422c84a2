"""Verifying a presented token: the raw signature check, our local verification, a cached answer, a round trip.

* raw: ``Ed25519PublicKey.verify`` of the token's signature, nothing else — the floor of any verification;
* local: ``Broker.verify`` with the broker's JWKS — signature, header, claims, expiry, and the revocation
  feed (synced when older than the revocation bound, 1 s by default, so about one call a second pays a
  round trip; the p50 is the in-process path);
* cached: ``Broker(strict_verify=True).verify`` — remote mode, answered from the cache of validate answers
  younger than the revocation bound;
* remote: ``Broker.validate`` — ``POST /v1/token/validate`` every time.

All four run interleaved, round by round, on the same live token.
"""

from __future__ import annotations

import base64

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agentwrit_tools.client import Broker

from ._broker import BrokerProcess, check, setup_app
from ._harness import Benchmark, Context, Figure
from ._timing import Latencies, interleave, ratio_figure

__all__ = ["BENCHMARK", "run"]

WARMUP = 50


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_verifier(url: str, token: str) -> tuple[Ed25519PublicKey, bytes, bytes]:
    with httpx.Client(base_url=url) as client:
        jwk = check(client.get("/.well-known/jwks.json"), "jwks")["keys"][0]  # type: ignore[index]
    key = Ed25519PublicKey.from_public_bytes(_b64url(str(jwk["x"])))
    header, payload, signature = token.split(".")
    return key, f"{header}.{payload}".encode("ascii"), _b64url(signature)


def run(ctx: Context) -> list[Figure]:
    options = ctx.options
    ctx.phase("verification: raw, local, cached, remote", options.repeat + 1)
    names = ("raw", "local", "cached", "remote")
    latencies = {name: Latencies() for name in names}
    with BrokerProcess() as process:
        app = setup_app(process)
        minter = Broker(process.url, app.client_id, app.client_secret)
        local = Broker(process.url, app.client_id, app.client_secret)  # the app's bearer reads the revocation feed
        strict = Broker(process.url, strict_verify=True)
        try:
            with minter.mint("read:bench:item-1", orch_id="bench", task_id="verify", ttl=3600) as credential:
                token = credential.access_token
                key, signed, signature = _raw_verifier(process.url, token)
                operations = {
                    "raw": lambda _: key.verify(signature, signed),
                    "local": lambda _: local.verify(token),
                    "cached": lambda _: strict.verify(token),
                    "remote": lambda _: local.validate(token),
                }
                interleave(operations, options.size(WARMUP, 5), {name: Latencies() for name in names})
                ctx.advance()
                for _ in range(options.repeat):
                    interleave(operations, options.size(400, 10), latencies)
                    ctx.advance()
            if local.verification_mode != "local":
                raise RuntimeError(f"verification was expected to be local, not {local.verification_mode}")
        finally:
            for client in (minter, local, strict):
                client.close()
    ctx.keep("raw Ed25519 verify", latencies["raw"].samples)
    ctx.keep("local verify (JWKS + feed)", latencies["local"].samples)
    ctx.keep("cached verify (remote mode)", latencies["cached"].samples)
    ctx.keep("remote validate", latencies["remote"].samples)
    return [
        latencies["raw"].figure("raw_ed25519_verify_us", "raw Ed25519 signature verify, p50", unit="us"),
        latencies["local"].figure("local_verify_us_p50", "local verify (JWKS + revocation feed), p50", unit="us"),
        latencies["cached"].figure("cached_verify_us_p50", "cached verify (remote mode, cache hit), p50", unit="us"),
        latencies["remote"].figure("remote_validate_ms_p50", "remote validate (POST /v1/token/validate), p50"),
        ratio_figure(
            "local_vs_raw_verify_ratio", "local verify / raw verify, p50", latencies["local"], latencies["raw"]
        ),
    ]


BENCHMARK = Benchmark(
    name="verify",
    title="Token verification: raw signature, local, cached, remote",
    note="Interleaved on one live token from a CLI-started broker (127.0.0.1); default revocation bound (1 s).",
    run=run,
)
