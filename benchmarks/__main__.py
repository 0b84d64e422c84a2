"""``python -m benchmarks [NAME ...]``: run the benchmarks, print their figures, write bench-results.json and .png."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._chart import draw
from ._harness import REPO_ROOT, RESULTS_PATH, Benchmark, Context, Figure, Options, machine, merge_results

# One module per benchmark, each defining BENCHMARK. Listed, not discovered: the order is the report's order.
MODULES: tuple[str, ...] = (
    "benchmarks.fast_path",
    "benchmarks.mint_release",
    "benchmarks.guard_overhead",
    "benchmarks.verification",
    "benchmarks.async_calls",
    "benchmarks.pipeline_calls",
    "benchmarks.revocation_scale",
    "benchmarks.broker_scale",
    "benchmarks.broker_throughput",
    "benchmarks.mcp_calls",
    "benchmarks.proof_of_possession",
    "benchmarks.replicas",
)
QUICK_RESULTS = REPO_ROOT / "bench-results-quick.json"


def load_benchmarks() -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for module_name in MODULES:
        benchmark = importlib.import_module(module_name).BENCHMARK
        if not isinstance(benchmark, Benchmark):
            raise TypeError(f"{module_name}.BENCHMARK is not a Benchmark")
        found[benchmark.name] = benchmark
    return found


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render_table(benchmark: Benchmark, figures: Sequence[Figure], elapsed: float, options: Options) -> Table:
    table = Table(title=benchmark.title, caption=f"ran {elapsed:.1f} s. {benchmark.note}", caption_justify="left")
    table.add_column("measurement")
    table.add_column("key", style="dim")
    table.add_column("median", justify="right")
    table.add_column("min - max", justify="right")
    table.add_column("unit")
    table.add_column("runs x ops", justify="right")
    for figure in figures:
        table.add_row(
            figure.label,
            figure.key,
            _number(figure.value),
            f"{_number(figure.spread[0])} - {_number(figure.spread[1])}",
            figure.unit,
            f"{figure.repeats} x {figure.operations:,}",
        )
    return table


class _Reporter:
    """The benchmark's own progress bar, under an overall one."""

    def __init__(self, progress: Progress, name: str) -> None:
        self._progress = progress
        self._task = progress.add_task(name, total=1)
        self._name = name

    def phase(self, description: str, total: int) -> None:
        self._progress.reset(self._task, total=max(1, total), description=f"  {description}")

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def done(self) -> None:
        self._progress.remove_task(self._task)


def _parse(argv: Sequence[str] | None, names: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default all: {', '.join(names)})")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts, writes bench-results-quick.*")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per measurement (default 5, minimum 5)")
    parser.add_argument("--seconds", type=float, default=1.0, help="target duration of one repetition (default 1)")
    parser.add_argument("--workers", type=int, default=8, help="concurrency of the broker throughput benchmark")
    parser.add_argument("--output", type=Path, help="results file (default bench-results.json at the repo root)")
    parser.add_argument("--chart", type=Path, help="chart file (default: the results file with .png)")
    parser.add_argument("--no-write", action="store_true", help="print only: no results file, no chart")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5: a median of fewer runs is not worth quoting")
    if args.seconds <= 0 or args.workers < 1:
        parser.error("--seconds must be positive and --workers at least 1")
    unknown = [name for name in args.names if name not in names]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(names)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    benchmarks = load_benchmarks()
    args = _parse(argv, list(benchmarks))
    quick = bool(args.quick)
    options = Options(repeat=args.repeat, seconds=0.05 if quick else args.seconds, workers=args.workers, quick=quick)
    output: Path = args.output or (QUICK_RESULTS if quick else RESULTS_PATH)
    chart: Path = args.chart or output.with_suffix(".png")

    console = Console(width=None if sys.stdout.isatty() else 150)
    selected = args.names or list(benchmarks)
    all_figures: list[Figure] = []
    samples: dict[str, list[float]] = {}
    started = time.perf_counter()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        overall = progress.add_task("benchmarks", total=len(selected))
        for name in selected:
            benchmark = benchmarks[name]
            progress.update(overall, description=f"{benchmark.name}: {benchmark.title}")
            reporter = _Reporter(progress, benchmark.name)
            ctx = Context(options=options, reporter=reporter, samples=samples)
            start = time.perf_counter()
            figures = list(benchmark.run(ctx))
            elapsed = time.perf_counter() - start
            reporter.done()
            progress.console.print(render_table(benchmark, figures, elapsed, options))
            all_figures.extend(figures)
            progress.advance(overall)
    total = time.perf_counter() - started
    meta: dict[str, Any] = {"mode": "quick" if quick else "full", "seconds": round(total, 1), "benchmarks": selected}
    console.print(f"{len(all_figures)} figures in {total:.0f} s on {machine()['cpu']} ({machine()['nproc']} cpus)")
    if not args.no_write:
        merge_results(all_figures, output, meta=meta)
        console.print(f"wrote {output}")
        drawn = draw(samples, chart, title=f"agentwrit-tools benchmarks ({meta['mode']} run)")
        if drawn is not None:
            console.print(f"wrote {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
