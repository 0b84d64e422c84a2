"""A flame graph as a standalone SVG, drawn from a pyinstrument profile (no ptrace, no external tool).

Each box is a function on one call path, every repetition of it aggregated; its width is the wall time spent in
it and below it, its children sit on top of it, left to right in the order pyinstrument found them. Boxes
narrower than two pixels are left out (their time is still in their parent's width). Hovering a box shows the
function, where it is, and its time and share (an SVG ``<title>``). Colours only separate the project's code
(blue), the standard library and C calls (grey) and everything else installed (orange); they carry no measurement.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from pyinstrument import processors
from pyinstrument.frame import Frame
from pyinstrument.session import Session

__all__ = ["write_flamegraph"]

WIDTH = 1600
ROW = 17
FONT = 11
_MIN_PIXELS = 2.0


def _colour(frame: Frame) -> str:
    path = frame.file_path or ""
    if "agentwrit_tools" in path or "benchmarks" in path:
        return "#8fb8de"
    if "site-packages" in path:
        return "#f2b179"
    return "#c8c8c8"


def _label(frame: Frame, pixels: float) -> str:
    text = frame.function or "?"
    fits = int((pixels - 6) / (FONT * 0.6))
    if fits < 3:
        return ""
    return text if len(text) <= fits else text[: fits - 1] + "…"


def _boxes(frame: Frame, x: float, depth: int, scale: float, total: float, out: list[str]) -> int:
    """Draw ``frame`` at ``x`` (pixels) and ``depth`` (rows from the bottom); returns the deepest row drawn."""
    pixels = frame.time * scale
    if pixels < _MIN_PIXELS:
        return depth - 1
    where = f"{frame.file_path_short or ''}:{frame.line_no}" if frame.line_no else (frame.file_path_short or "")
    share = 100 * frame.time / total if total else 0.0
    tip = escape(f"{frame.function} ({where}) — {frame.time * 1000:.1f} ms, {share:.1f} %")
    y = -(depth + 1) * ROW
    out.append(
        f'<g><title>{tip}</title><rect x="{x:.2f}" y="{y}" width="{pixels:.2f}" height="{ROW - 1}" '
        f'fill="{_colour(frame)}" rx="2"/>'
        f'<text x="{x + 3:.2f}" y="{y + ROW - 5}">{escape(_label(frame, pixels))}</text></g>'
    )
    deepest = depth
    child_x = x
    for child in frame.children:
        deepest = max(deepest, _boxes(child, child_x, depth + 1, scale, total, out))
        child_x += child.time * scale
    return deepest


def write_flamegraph(session: Session, path: Path, title: str) -> Path:
    """Draw ``session`` (its root frame's time is the full width) into ``path``; returns ``path``."""
    root = session.root_frame()
    for process in (
        processors.remove_importlib,
        processors.aggregate_repeated_calls,  # one box per call path, every call's samples in it
        processors.merge_consecutive_self_time,
        processors.remove_unnecessary_self_time_nodes,
    ):
        root = process(root, {})
    boxes: list[str] = []
    deepest = 0
    if root is not None and root.time > 0:
        deepest = _boxes(root, 0.0, 0, WIDTH / root.time, root.time, boxes)
    height = (deepest + 1) * ROW + 40
    header = escape(f"{title} — {session.duration:.2f} s wall, {session.sample_count} samples (pyinstrument)")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 {-height + 30} {WIDTH} {height}" font-family="monospace" font-size="{FONT}">'
        f'<text x="4" y="{-height + 50}" font-size="13">{header}</text>'
        f'<g transform="translate(0,0)">{"".join(boxes)}</g></svg>\n'
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path
