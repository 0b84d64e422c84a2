"""``python -m benchmarks.profile_call``: where a guarded tool call spends its time, client and broker (pyinstrument).

Runs ``--calls`` guarded calls of a no-op tool (sync ``Task.call``, or ``Task.acall`` with ``--concurrency``
tasks) against a CLI-started broker that itself runs under pyinstrument, and writes both reports to ``--out``:
``client.txt``/``client.html`` and ``broker.txt``. A sampling profiler shows wall time: on a loopback machine a
blocking ``send``/``recv`` includes the other process's work, so read the two reports together.

``--flamegraphs DIR`` (``make profile``) profiles one call *before and after* the fast path instead — the same
sync calls through a client without it (httpx, nothing fetched ahead: a challenge and a launch token on the
calls' path) and through the default client — and draws four flame graphs: ``client-before.svg``,
``client-after.svg``, ``broker-before.svg``, ``broker-after.svg`` (each beside its text report). Each phase has a
broker of its own, so each broker graph is that client's load only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from pyinstrument import Profiler

from agentwrit_tools.client import AsyncBroker, Broker
from agentwrit_tools.guard import Task

from ._broker import BrokerProcess, setup_app
from ._flamegraph import write_flamegraph
from .async_calls import _burst
from .guard_overhead import noop

WARMUP = 50


def _sync_calls(broker: Broker, calls: int, profiler: Profiler) -> float:
    """Warm up, then profile ``calls`` guarded calls; returns the wall time per call in milliseconds."""
    with Task(broker, orch_id="profile", task_id="sync", ceiling="read:bench:*") as task:
        for n in range(WARMUP):
            task.call(noop, {"item": f"warm-{n}"})
        started = time.perf_counter()
        profiler.start()
        for n in range(calls):
            task.call(noop, {"item": f"item-{n}"})
        profiler.stop()
        return (time.perf_counter() - started) * 1000 / calls


async def _async_calls(
    url: str, client_id: str, client_secret: str, calls: int, workers: int, profiler: Profiler
) -> None:
    broker = AsyncBroker(url, client_id, client_secret)
    async with broker, Task(broker, orch_id="profile", task_id="async", ceiling="read:bench:*") as task:
        numbers = itertools.count()
        await _burst(task, WARMUP, workers, numbers)
        profiler.start()
        await _burst(task, calls, workers, numbers)
        profiler.stop()


def _flamegraphs(out: Path, calls: int) -> int:
    """Before (no fast path) and after, one broker each; four flame graphs and their text reports."""
    for phase in ("before", "after"):
        profiler = Profiler(interval=0.0005)
        with BrokerProcess(profile_to=out / f"broker-{phase}.svg") as process:
            app = setup_app(process)
            options: dict[str, object] = {}
            if phase == "before":  # the client as it was: httpx on every request, nothing fetched ahead
                options = {"prefetch": False, "http_client": httpx.Client()}
            with Broker(process.url, app.client_id, app.client_secret, **options) as broker:  # type: ignore[arg-type]
                per_call = _sync_calls(broker, calls, profiler)
        session = profiler.last_session
        assert session is not None
        write_flamegraph(
            session, out / f"client-{phase}.svg", f"client, {phase} the fast path: {per_call:.2f} ms a call"
        )
        (out / f"client-{phase}.txt").write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
        print(f"{phase:>6}: {per_call:.2f} ms per guarded call (profiled)")
    names = [f"{side}-{phase}.svg" for phase in ("before", "after") for side in ("client", "broker")]
    print(f"flame graphs in {out}: {', '.join(names)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_call", description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--async", dest="use_async", action="store_true", help="AsyncBroker + Task.acall")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent calls with --async (default 8)")
    parser.add_argument("--out", type=Path, help="directory for the reports (default: a new temporary one)")
    parser.add_argument("--flamegraphs", type=Path, metavar="DIR", help="before/after flame graphs (SVG) into DIR")
    args = parser.parse_args(argv)
    if args.flamegraphs is not None:
        args.flamegraphs.mkdir(parents=True, exist_ok=True)
        return _flamegraphs(args.flamegraphs, args.calls)
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="agentwrit-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(interval=0.0005, async_mode="enabled" if args.use_async else "disabled")
    with BrokerProcess(profile_to=out / "broker.txt") as process:
        app = setup_app(process)
        if args.use_async:  # async_calls' burst calls its own async no-op tool
            asyncio.run(
                _async_calls(process.url, app.client_id, app.client_secret, args.calls, args.concurrency, profiler)
            )
        else:
            with Broker(process.url, app.client_id, app.client_secret) as broker:
                _sync_calls(broker, args.calls, profiler)
    (out / "client.txt").write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    (out / "client.html").write_text(profiler.output_html(), encoding="utf-8")
    print(profiler.output_text(unicode=True, color=sys.stdout.isatty()))
    print(f"reports: {out / 'client.txt'}, {out / 'client.html'}, {out / 'broker.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
