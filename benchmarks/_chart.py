"""``bench-results.png``: latency distributions, drawn as cumulative curves on a log time axis.

Four panels, each comparing what a reader wants compared: a whole guarded call on the fast path vs the same call
without it and the official client's mint+release; our mint+release vs the official client's; a guarded call vs
the bare call (and the crypto floor between them); local vs remote verification (with the raw signature check
and a cached answer). A curve further left is faster; the height at a point is the share of
operations that took at most that long, so p50 and p99 can be read off the 0.5 and 0.99 lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["PANELS", "draw"]

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "the fast path: a wrapped call vs official",
        ("wrapped call (fast path)", "wrapped call (without fast path)", "official, in the same rounds"),
    ),
    ("mint + release: ours vs official", ("ours: mint+release", "official: create_agent+release")),
    ("a tool call: wrapped vs bare", ("wrapped call (guard + no-op)", "crypto floor", "bare call (no-op)")),
    (
        "verification: local vs remote",
        ("raw Ed25519 verify", "local verify (JWKS + feed)", "cached verify (remote mode)", "remote validate"),
    ),
)


def _mantissa(value: float) -> int:
    return round(value / 10.0 ** math.floor(math.log10(value)))


def _label(name: str, values: Sequence[float]) -> str:
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    return f"{name} (p50 {p50 * 1e3:.3g} ms)" if p50 >= 1e-3 else f"{name} (p50 {p50 * 1e6:.3g} µs)"


def draw(samples: Mapping[str, Sequence[float]], path: Path, *, title: str) -> Path | None:
    """Write the chart; returns None (and writes nothing) when no panel has data."""
    panels = [(name, [s for s in series if samples.get(s)]) for name, series in PANELS]
    panels = [(name, series) for name, series in panels if series]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    some = FuncFormatter(lambda value, _: f"{value:g}" if value > 0 and _mantissa(value) in (2, 5) else "")

    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for axis, (name, series) in zip(axes[0], panels, strict=True):
        for label in series:
            values = sorted(samples[label])
            shares = [(index + 1) / len(values) for index in range(len(values))]
            axis.step([v * 1e3 for v in values], shares, where="post", label=_label(label, values))
        axis.set_xscale("log")
        axis.xaxis.set_major_formatter(plain)
        low, high = axis.get_xlim()
        axis.xaxis.set_minor_formatter(plain if high / low < 15 else some)  # label every tick in a narrow range
        axis.set_xlabel("latency (ms, log scale)")
        axis.set_ylabel("share of operations")
        axis.set_ylim(0, 1.01)
        for level in (0.5, 0.99):
            axis.axhline(level, color="grey", linewidth=0.5, linestyle=":")
        axis.set_title(name)
        axis.grid(True, which="both", linewidth=0.3, alpha=0.5)
        axis.legend(fontsize="small", loc="lower right")
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
