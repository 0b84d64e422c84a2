"""What every benchmark shares: a real broker subprocess on loopback, timing statistics and the results file."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

__all__ = [
    "LOOPBACK",
    "RESULTS_PATH",
    "Benchmark",
    "BrokerProcess",
    "Figure",
    "Options",
    "Series",
    "calibrate",
    "free_port",
    "merge_results",
    "percentile",
]

LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_PATH = REPO_ROOT / "bench-results.json"


@dataclass(frozen=True)
class Options:
    """Knobs shared by every benchmark.

    Attributes:
        repeat: repetitions per measurement; the reported figure is their median.
        seconds: roughly how long one repetition should run. Operation counts are calibrated to it, so a slow
            machine measures fewer operations instead of running for minutes.
        workers: concurrency of the concurrent measurements.
    """

    repeat: int = 5
    seconds: float = 1.0
    workers: int = 8


@dataclass(frozen=True)
class Figure:
    """One reported number. ``key`` is its name in ``bench-results.json``; the rest is for the table."""

    key: str
    label: str
    value: float
    spread: tuple[float, float]
    repeats: int
    operations: int
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class Benchmark:
    """A runnable benchmark: ``run`` returns its figures; ``note`` explains them under the table."""

    name: str
    title: str
    note: str
    run: Callable[[Options], Sequence[Figure]]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); honest for small samples, no interpolation."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Series:
    """Throughput of repeated runs (operations per second) and the latency of every operation timed in them."""

    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    operations: int = 0

    def add_run(self, operations: int, elapsed: float, latencies: Sequence[float]) -> None:
        self.rates.append(operations / elapsed)
        self.latencies.extend(latencies)
        self.operations += operations

    def figure(self, key: str, label: str) -> Figure:
        return Figure(
            key=key,
            label=label,
            value=statistics.median(self.rates),
            spread=(min(self.rates), max(self.rates)),
            repeats=len(self.rates),
            operations=self.operations,
            p50_ms=percentile(self.latencies, 0.50) * 1000 if self.latencies else None,
            p99_ms=percentile(self.latencies, 0.99) * 1000 if self.latencies else None,
        )


def calibrate(seconds_per_op: float, options: Options, *, low: int, high: int) -> int:
    """How many operations fill one repetition of ``options.seconds``, kept within ``low``..``high``."""
    if seconds_per_op <= 0:
        return high
    return max(low, min(high, int(options.seconds / seconds_per_op)))


def free_port() -> int:
    """A port free on the loopback interface right now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _cli_executable() -> str:
    beside_python = Path(sys.executable).with_name("agentwrit-tools")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("agentwrit-tools")
    if found is None:
        raise RuntimeError("the agentwrit-tools command is not installed (run `make setup`)")
    return found


class BrokerProcess:
    """``agentwrit-tools broker serve`` as a real subprocess on a free loopback port, with its own database.

    Rate limits are off: the benchmark authenticates more often than the contract's limits allow.
    """

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.admin_secret = secrets.token_urlsafe(32)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.health: dict[str, object] = {}
        self._startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    def __enter__(self) -> BrokerProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="agentwrit-bench-")
        workdir = Path(self._tmp.name)
        self._log = workdir / "broker.log"
        command = [
            _cli_executable(),
            "broker",
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--db",
            str(workdir / "b.db"),
            "--no-rate-limits",
        ]
        env = {**os.environ, "AGENTWRIT_ADMIN_SECRET": self.admin_secret}
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            self._wait_until_healthy()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"the broker exited with code {self._process.returncode} before serving:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = client.get("/v1/health")
                    if response.status_code == 200:
                        self.health = response.json()
                        return
                time.sleep(0.1)
        raise RuntimeError(
            f"the broker did not answer /v1/health within {self._startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None or not self._log.exists():
            return "(no log)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()


def merge_results(figures: Sequence[Figure], path: Path = RESULTS_PATH) -> dict[str, object]:
    """Merge ``{figure.key: value}`` into the JSON object at ``path`` (created if absent) and return it."""
    current: dict[str, object] = {}
    if path.exists():
        loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        current = loaded
    for figure in figures:
        current[figure.key] = round(figure.value, 1)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return current
