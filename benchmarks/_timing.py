"""Timing and statistics: percentiles, interleaved latency samples, throughput series.

Figures are robust to a noisy machine in two ways. Every measurement is repeated (``Options.repeat``) and the
reported value is the median of the repetitions' own statistics, with their min-max as the spread. And things
that are compared with each other (our client vs the official one, a wrapped vs a bare call) are measured
*interleaved*, one operation of each in turn, so a burst of load from elsewhere hits both sides alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ._harness import Figure, Options

__all__ = [
    "Latencies",
    "Series",
    "ainterleave",
    "calibrate",
    "interleave",
    "paired_difference",
    "percentile",
    "ratio_figure",
]

_SCALE = {"s": 1.0, "ms": 1e3, "us": 1e6, "x": 1.0}  # samples are seconds, or plain ratios ("x")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); honest for small samples, no interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def calibrate(seconds_per_op: float, options: Options, *, low: int, high: int) -> int:
    """How many operations fill one repetition of ``options.seconds``, kept within ``low``..``high``."""
    if seconds_per_op <= 0:
        return high
    return max(low, min(high, int(options.seconds / seconds_per_op)))


@dataclass
class Latencies:
    """Latency samples (seconds) of one kind of operation, kept per repetition."""

    runs: list[list[float]] = field(default_factory=list)

    def new_run(self) -> list[float]:
        run: list[float] = []
        self.runs.append(run)
        return run

    @property
    def samples(self) -> list[float]:
        return [value for run in self.runs for value in run]

    def stat(self, fraction: float) -> tuple[float, tuple[float, float]]:
        """Median over repetitions of each repetition's percentile, with their min-max."""
        per_run = [percentile(run, fraction) for run in self.runs if run]
        return statistics.median(per_run), (min(per_run), max(per_run))

    def figure(self, key: str, label: str, *, fraction: float = 0.5, unit: str = "ms") -> Figure:
        value, (low, high) = self.stat(fraction)
        scale = _SCALE[unit]
        return Figure(
            key=key,
            label=label,
            value=value * scale,
            spread=(low * scale, high * scale),
            unit=unit,
            repeats=len(self.runs),
            operations=sum(len(run) for run in self.runs),
        )

    def figures(self, prefix: str, label: str, *, unit: str = "ms") -> list[Figure]:
        """``<prefix>_p50`` and ``<prefix>_p99``."""
        return [
            self.figure(f"{prefix}_p50", f"{label} p50", fraction=0.5, unit=unit),
            self.figure(f"{prefix}_p99", f"{label} p99", fraction=0.99, unit=unit),
        ]


def _rounds(names: Sequence[str], count: int) -> Iterator[tuple[int, str]]:
    """``(round number, operation name)`` for ``count`` rounds of every name, the order rotating each round."""
    for number in range(count):
        shift = number % len(names)
        for name in [*names[shift:], *names[:shift]]:
            yield number, name


def interleave(operations: Mapping[str, Callable[[int], object]], count: int, into: Mapping[str, Latencies]) -> None:
    """One repetition: ``count`` rounds, each timing every operation once, in turn (the order rotates)."""
    runs = {name: into[name].new_run() for name in operations}
    for number, name in _rounds(list(operations), count):
        start = time.perf_counter()
        operations[name](number)
        runs[name].append(time.perf_counter() - start)


async def ainterleave(
    operations: Mapping[str, Callable[[int], Awaitable[object]]], count: int, into: Mapping[str, Latencies]
) -> None:
    """:func:`interleave` for coroutine functions (each awaited alone: the timing is one operation's latency)."""
    runs = {name: into[name].new_run() for name in operations}
    for number, name in _rounds(list(operations), count):
        start = time.perf_counter()
        await operations[name](number)
        runs[name].append(time.perf_counter() - start)


@dataclass
class Series:
    """Throughput of repeated runs (operations per second) and the latency of every operation timed in them."""

    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    operations: int = 0

    def add_run(self, operations: int, elapsed: float, latencies: Sequence[float] = ()) -> None:
        self.rates.append(operations / elapsed)
        self.latencies.extend(latencies)
        self.operations += operations

    def figure(self, key: str, label: str, *, unit: str = "ops/s") -> Figure:
        return Figure(
            key=key,
            label=label,
            value=statistics.median(self.rates),
            spread=(min(self.rates), max(self.rates)),
            unit=unit,
            repeats=len(self.rates),
            operations=self.operations,
        )


def paired_difference(minuend: Latencies, subtrahend: Latencies) -> Latencies:
    """Operation-by-operation differences of two interleaved measurements (what one adds to the other)."""
    paired = Latencies()
    for top_run, bottom_run in zip(minuend.runs, subtrahend.runs, strict=True):
        paired.runs.append([top - bottom for top, bottom in zip(top_run, bottom_run, strict=True)])
    return paired


def ratio_figure(
    key: str, label: str, numerator: Latencies, denominator: Latencies, *, fraction: float = 0.5
) -> Figure:
    """The ratio of two interleaved measurements' percentiles, paired repetition by repetition."""
    ratios = [
        percentile(top, fraction) / percentile(bottom, fraction)
        for top, bottom in zip(numerator.runs, denominator.runs, strict=True)
        if top and bottom
    ]
    return Figure(
        key=key,
        label=label,
        value=statistics.median(ratios),
        spread=(min(ratios), max(ratios)),
        unit="x",
        repeats=len(ratios),
        operations=len(numerator.samples) + len(denominator.samples),
    )
