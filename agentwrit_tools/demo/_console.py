"""The terminal side of a demo run: JSON lines for machines, readable lines for people, and the closing summary.

``--json`` prints one JSON object per event (``scenario`` added to the event's own fields) and nothing else on
stdout, so the output can be piped into ``jq`` or asserted line by line. The rich output prints the same events
through :func:`describe`, then a per-scenario table and the exposure summary of the whole run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from ..trace import ExposureReport, TraceEvent
from ._describe import Line, describe, ms, short_agent
from ._runner import ScenarioOutcome

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["JsonLinesOutput", "RichOutput", "print_summary"]

_STYLE = {"ok": "green", "refused": "red", "warning": "bold yellow", "info": "cyan", "muted": "dim"}


class JsonLinesOutput:
    """Writes ``{"scenario": name, **event.to_dict()}`` per event, one line each, flushed."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, scenario: str, event: TraceEvent) -> None:
        line = {"scenario": scenario, **event.to_dict()}
        self._stream.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str) + "\n")
        self._stream.flush()


def _render(line: Line) -> str:
    from rich.markup import escape

    style = _STYLE[line.level]
    parts = [f"[{style}]{line.label:>10}[/]"]
    if line.tool:
        parts.append(f"[bold]{escape(line.tool)}[/]")
    parts.append(escape(line.text))
    if line.scopes:
        parts.append("[magenta]" + escape(", ".join(line.scopes)) + "[/]")
    if line.arguments:  # model-chosen text: shown as ASCII, so no look-alike or control character reaches the terminal
        parts.append("[dim]" + escape(line.arguments.encode("ascii", "backslashreplace").decode()) + "[/]")
    if line.jti:
        parts.append(f"[dim]jti {line.jti[:8]}…[/]")
    if line.agent and line.type in ("minted", "delegated", "stage_started"):
        parts.append(f"[dim]{escape(short_agent(line.agent))}[/]")
    return "  ".join(parts)


class RichOutput:
    """Prints each event as one readable line; a rule opens each scenario."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, scenario: str, event: TraceEvent) -> None:
        line = describe(event)
        if line is None:
            return
        if line.type == "scenario_started":
            self.console.print()
            self.console.rule(f"[bold]{scenario}[/] — {line.text}", align="left")
            return
        if line.type == "token_checked" and line.level == "ok":
            return  # the final check line counts them; only a live one is worth its own line
        self.console.print(_render(line), soft_wrap=False)


def _ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}x"


def print_summary(console: Console, outcomes: Sequence[ScenarioOutcome], wall_time: float) -> None:
    """A table of the scenarios, the exposure of every credential of the run, and the wall time."""
    from rich.table import Table

    table = Table(title="scenarios", title_justify="left")
    for column in ("scenario", "credentials", "refused", "window p50", "tool time p50", "alive after", "result"):
        table.add_column(column, justify="left" if column in ("scenario", "result") else "right")
    for outcome in outcomes:
        report = outcome.report
        result = "[green]ok[/]" if outcome.passed else "[bold red]FAILED[/]"
        table.add_row(
            outcome.name,
            str(len(report.calls)),
            str(report.denied + report.rejected),
            ms(report.window.p50),
            ms(report.run_time.p50),
            f"{outcome.check.live_credentials} of {outcome.check.checked}",
            result,
        )
    console.print()
    console.print(table)
    overall = ExposureReport.from_events(e for outcome in outcomes for e in outcome.events)
    console.print(
        f"[bold]Exposure[/] over {len(overall.calls)} per-call credentials: lifetime (mint → release) "
        f"p50 {ms(overall.window.p50)}, p95 {ms(overall.window.p95)}; time alive but not in use p50 "
        f"{ms(overall.overhang.p50)}; lifetime / tool time p50 {_ratio(overall.ratio.p50)}. "
        f"A standing key would have been alive for the whole {wall_time:.1f} s run."
    )
    live = sum(o.check.live_credentials for o in outcomes)
    checked = sum(o.check.checked for o in outcomes)
    verdict = "[green]every one dead[/]" if live == 0 else f"[bold red]{live} still alive[/]"
    console.print(f"Final checks: {checked} tokens validated with the broker after their scenario — {verdict}.")
    failed = [o.name for o in outcomes if not o.passed]
    if failed:
        console.print(f"[bold red]Scenarios that did not go as promised:[/] {', '.join(failed)}")
        for outcome in outcomes:
            for failure in outcome.failures:
                console.print(f"  {outcome.name}: {failure}")
    console.print(f"{len(outcomes)} scenario(s) in {wall_time:.1f} s wall time.")
