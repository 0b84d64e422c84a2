"""``python -m benchmarks [NAME ...]``: run the benchmarks, print their figures, merge them into bench-results.json."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from ._harness import RESULTS_PATH, Benchmark, Figure, Options, merge_results

# One module per benchmark, each defining BENCHMARK. Listed, not discovered: the order is the report's order.
MODULES: tuple[str, ...] = ("benchmarks.broker_throughput",)


def load_benchmarks() -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for module_name in MODULES:
        benchmark = importlib.import_module(module_name).BENCHMARK
        if not isinstance(benchmark, Benchmark):
            raise TypeError(f"{module_name}.BENCHMARK is not a Benchmark")
        found[benchmark.name] = benchmark
    return found


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def render_table(benchmark: Benchmark, figures: Sequence[Figure], elapsed: float, options: Options) -> Table:
    table = Table(
        title=benchmark.title,
        caption=f"median of {options.repeat} repetitions, ran {elapsed:.1f} s. {benchmark.note}",
    )
    table.add_column("measurement")
    table.add_column("median", justify="right")
    table.add_column("min - max", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("ops", justify="right")
    for figure in figures:
        table.add_row(
            figure.label,
            _number(figure.value),
            f"{_number(figure.spread[0])} - {_number(figure.spread[1])}",
            f"{figure.p50_ms:.2f}" if figure.p50_ms is not None else "-",
            f"{figure.p99_ms:.2f}" if figure.p99_ms is not None else "-",
            f"{figure.operations:,}",
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    benchmarks = load_benchmarks()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all: {', '.join(benchmarks)})"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per measurement (default 5, minimum 5)")
    parser.add_argument("--seconds", type=float, default=1.0, help="target duration of one repetition (default 1)")
    parser.add_argument("--workers", type=int, default=8, help="concurrency of concurrent measurements (default 8)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS_PATH.name}")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5: a median of fewer runs is not worth quoting")
    if args.seconds <= 0 or args.workers < 1:
        parser.error("--seconds must be positive and --workers at least 1")
    unknown = [name for name in args.names if name not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    options = Options(repeat=args.repeat, seconds=args.seconds, workers=args.workers)

    console = Console()
    selected = args.names or list(benchmarks)
    all_figures: list[Figure] = []
    for name in selected:
        benchmark = benchmarks[name]
        with console.status(f"running {benchmark.name}…"):
            start = time.perf_counter()
            figures = list(benchmark.run(options))
            elapsed = time.perf_counter() - start
        console.print(render_table(benchmark, figures, elapsed, options))
        all_figures.extend(figures)
    if not args.no_write:
        merge_results(all_figures)
        console.print(f"wrote {len(all_figures)} figures to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
