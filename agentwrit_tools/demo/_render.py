"""HTML for the live parts of a demo page: trace lines, the exposure panel, the final verdict, the audit tab.

Server-rendered with Jinja2 (autoescaped: model output and arguments are text, never markup). A demo's own page
templates live in its folder and may extend ``kit/base.html``; :func:`template_env` finds both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from ..auditchain import verify_chain
from ..client import Broker
from ..trace import ExposureReport, TraceEvent
from ._describe import describe, ms, short_agent

__all__ = [
    "KIT_TEMPLATES",
    "STATIC_DIR",
    "ExposureRow",
    "audit_fragment",
    "exposure_fragment",
    "exposure_rows",
    "line_fragment",
    "template_env",
    "verdict_fragment",
]

_HERE = Path(__file__).parent
KIT_TEMPLATES = _HERE / "templates"
STATIC_DIR = _HERE / "static"
"""The kit's static files (htmx, its SSE extension, the kit's CSS); serve them under ``/kit-static/``."""

_AUDIT_ROWS = 80


def template_env(*folders: Path) -> Environment:
    """A Jinja2 environment over ``folders`` (searched first) and the kit's templates."""
    loader = ChoiceLoader([FileSystemLoader([str(f) for f in folders]), FileSystemLoader(str(KIT_TEMPLATES))])
    env = Environment(loader=loader, autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["ms"] = ms
    env.filters["short_agent"] = short_agent
    return env


def line_fragment(env: Environment, event: TraceEvent) -> str | None:
    """One ``<li>`` of the live trace, or ``None`` for an event a person need not see."""
    line = describe(event)
    if line is None:
        return None
    return env.get_template("kit/line.html").render(line=line)


def verdict_fragment(env: Environment, event: TraceEvent) -> str:
    """The banner a run ends with: its final check, green when no token it saw is still alive."""
    line = describe(event)
    live, checked = getattr(event, "live_credentials", None), getattr(event, "tokens_checked", None)
    return env.get_template("kit/verdict.html").render(line=line, live=live, checked=checked)


@dataclass(frozen=True)
class ExposureRow:
    """One credential in the exposure panel; widths are percentages of the longest window on the panel."""

    tool: str
    scope: str
    window: str
    run_time: str
    overhang: str
    ratio: str
    window_pct: float
    run_pct: float
    released: bool


def exposure_rows(report: ExposureReport) -> list[ExposureRow]:
    longest = max((c.window for c in report.calls), default=0.0) or 1.0
    rows = []
    for call in report.calls:
        run = call.run_time or 0.0
        rows.append(
            ExposureRow(
                tool=call.tool or "",
                scope=", ".join(call.scope),
                window=ms(call.window),
                run_time=ms(call.run_time),
                overhang=ms(call.overhang),
                ratio="—" if call.ratio is None else f"{call.ratio:.2f}x",
                window_pct=round(100 * call.window / longest, 1),
                run_pct=round(100 * min(run, call.window) / longest, 1),
                released=call.released,
            )
        )
    return rows


def exposure_fragment(env: Environment, report: ExposureReport) -> str:
    """The exposure panel: each credential's lifetime beside its tool's run time, then the medians."""
    ratio = report.ratio.p50
    summary = {
        "credentials": len(report.calls),
        "refused": report.denied + report.rejected,
        "window_p50": ms(report.window.p50),
        "run_p50": ms(report.run_time.p50),
        "overhang_p50": ms(report.overhang.p50),
        "ratio_p50": "—" if math.isnan(ratio) else f"{ratio:.2f}x",
    }
    return env.get_template("kit/exposure.html").render(rows=exposure_rows(report), summary=summary)


def audit_fragment(env: Environment, operator: Broker, *, task_prefix: str | None = None) -> str:
    """The audit tab: the broker's latest events and a fresh verification of the whole hash chain.

    Every event is fetched (the chain can only be verified whole); the newest ``_AUDIT_ROWS`` are shown, those of
    this demo's tasks when ``task_prefix`` is given.
    """
    events: list[dict[str, Any]] = [e.model_dump() for e in operator.admin.iter_audit_events(page_size=1000)]
    report = verify_chain(events)
    shown: Sequence[dict[str, Any]] = events
    if task_prefix:
        shown = [e for e in events if str(e.get("task_id") or "").startswith(task_prefix)] or events
    rows = list(reversed(shown[-_AUDIT_ROWS:]))
    return env.get_template("kit/audit.html").render(events=rows, total=len(events), report=report)
