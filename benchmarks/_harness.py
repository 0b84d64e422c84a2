"""What every benchmark shares: options, figures, the run context (progress and chart samples), the results file."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "REPO_ROOT",
    "RESULTS_PATH",
    "Benchmark",
    "Context",
    "Figure",
    "Options",
    "machine",
    "merge_results",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = REPO_ROOT / "bench-results.json"


@dataclass(frozen=True)
class Options:
    """Knobs shared by every benchmark.

    Attributes:
        repeat: repetitions per measurement; the reported figure is their median.
        seconds: roughly how long one repetition should run. Operation counts are calibrated to it, so a slow
            machine measures fewer operations instead of running for minutes.
        workers: concurrency of the concurrent measurements of the broker throughput benchmark.
        quick: a smoke run — tiny counts and data sets; the figures only prove the code paths run.
    """

    repeat: int = 5
    seconds: float = 1.0
    workers: int = 8
    quick: bool = False

    def size(self, full: int, quick: int) -> int:
        """``full`` normally, ``quick`` in a smoke run."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Figure:
    """One reported number. ``key`` is its name in ``bench-results.json``; the rest is for the table."""

    key: str
    label: str
    value: float
    spread: tuple[float, float]
    unit: str
    repeats: int
    operations: int


@dataclass(frozen=True)
class Benchmark:
    """A runnable benchmark: ``run`` returns its figures; ``note`` explains them under the table."""

    name: str
    title: str
    note: str
    run: Callable[[Context], Sequence[Figure]]


class _Silent:
    def phase(self, description: str, total: int) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


@dataclass
class Context:
    """What a running benchmark gets: its options, a progress display, and a place for chart samples.

    Attributes:
        options: the knobs.
        samples: latency samples in seconds by series name (``ours mint+release``…), drawn in the chart.
    """

    options: Options
    reporter: Any = field(default_factory=_Silent)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def phase(self, description: str, total: int) -> None:
        """Start a phase of ``total`` steps (shown as the benchmark's progress bar)."""
        self.reporter.phase(description, total)

    def advance(self, steps: int = 1) -> None:
        self.reporter.advance(steps)

    def keep(self, name: str, values: Iterable[float]) -> None:
        """Keep latency samples (seconds) for the chart."""
        self.samples.setdefault(name, []).extend(values)


def _rounded(value: float) -> float:
    """Four significant digits: more would only quote noise."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, max(0, 3 - math.floor(math.log10(abs(value)))))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()}",
        "executable": sys.executable,
    }


def merge_results(
    figures: Sequence[Figure], path: Path = RESULTS_PATH, *, meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merge ``{figure.key: value}`` (and ``_meta``) into the JSON object at ``path`` and return it."""
    current: dict[str, Any] = {}
    if path.exists():
        loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        current = loaded
    for figure in figures:
        current[figure.key] = _rounded(figure.value)
    if meta is not None:
        current["_meta"] = {**machine(), "written": datetime.now(timezone.utc).isoformat(timespec="seconds"), **meta}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return current
