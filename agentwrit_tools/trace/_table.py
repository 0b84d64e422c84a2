"""Rendering the exposure report as a table: plain text always, rich when it is installed and wanted.

rich ships only with the ``broker`` extra, so it is imported lazily and never required.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._exposure import ExposureReport, Stats

__all__ = ["plain_table", "print_report"]

_HEAD = ("call", "tool", "scope", "window ms", "run ms", "overhang ms", "ratio", "released")


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 1000:.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def _scope(scope: tuple[str, ...]) -> str:
    text = ",".join(scope)
    return text if len(text) <= 48 else text[:45] + "..."


def _rows(report: ExposureReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for c in report.calls:
        rows.append(
            (
                c.call_id or "-",
                c.tool or "-",
                _scope(c.scope),
                _ms(c.window),
                _ms(c.run_time),
                _ms(c.overhang),
                _ratio(c.ratio),
                "yes" if c.released else "NO (lives to exp)",
            )
        )
    return rows


def _summary_rows(report: ExposureReport) -> list[tuple[str, ...]]:
    stats: tuple[Stats, ...] = (report.window, report.run_time, report.overhang, report.ratio)
    out: list[tuple[str, ...]] = []
    for label in ("p50", "p95", "max"):
        window, run, over, ratio = (getattr(s, label) for s in stats)
        out.append((label, "", "", _ms(window), _ms(run), _ms(over), _ratio(ratio), ""))
    return out


def _footer(report: ExposureReport) -> str:
    return (
        f"{len(report.calls)} credentials, {len(report.unreleased)} unreleased; "
        f"{report.denied} denied, {report.rejected} rejected, {report.mint_failed} mint failures"
    )


def plain_table(report: ExposureReport) -> str:
    rows = _rows(report)
    summary = _summary_rows(report)
    widths = [max(len(r[i]) for r in [_HEAD, *rows, *summary]) for i in range(len(_HEAD))]

    def line(cells: tuple[str, ...]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        parts = [cell.rjust(w) if 3 <= i <= 6 else cell.ljust(w) for i, (cell, w) in pairs]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(_HEAD), rule, *(line(r) for r in rows), rule, *(line(r) for r in summary), _footer(report)]
    return "\n".join(lines) + "\n"


def _rich_available() -> bool:
    return importlib.util.find_spec("rich") is not None


def print_report(report: ExposureReport, *, file: Any = None, use_rich: bool | None = None) -> None:
    out = file if file is not None else sys.stdout
    if use_rich is None:
        use_rich = _rich_available() and bool(getattr(out, "isatty", lambda: False)())
    if not use_rich or not _rich_available():
        out.write(plain_table(report))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Cells are data, not markup: a scope such as read:b:c must not turn into an emoji or a style tag.

    table = Table(title="Credential exposure", caption=_footer(report))
    for i, head in enumerate(_HEAD):
        table.add_column(head, justify="right" if 3 <= i <= 6 else "left")
    for row in _rows(report):
        table.add_row(*(Text(cell) for cell in row))
    table.add_section()
    for row in _summary_rows(report):
        table.add_row(*(Text(cell) for cell in row), style="bold")
    # A terminal knows its width; elsewhere (a file, a notebook capture) size the table to its content, not 80.
    terminal = bool(getattr(out, "isatty", lambda: False)())
    width = None if terminal else max(80, *(len(line) for line in plain_table(report).splitlines())) + 24
    Console(file=out, emoji=False, markup=False, highlight=False, width=width).print(table)
