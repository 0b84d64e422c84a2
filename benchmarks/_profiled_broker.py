"""Run ``agentwrit-tools`` (the broker) under pyinstrument: ``python _profiled_broker.py REPORT ARGS...``.

Not ``python -m pyinstrument``: uvicorn re-raises the SIGTERM it stopped on once it has shut down, which would
kill the process before the report is written. Here SIGTERM becomes a normal exit, so the report always lands.
The report is HTML for ``.html``, a flame graph for ``.svg`` (with the text report beside it), text otherwise.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from pyinstrument import Profiler

from agentwrit_tools.cli import main


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    report = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, _exit)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        main(sys.argv[2:])
    except SystemExit:
        pass
    finally:
        profiler.stop()
        if report.suffix == ".html":
            report.write_text(profiler.output_html(), encoding="utf-8")
        elif report.suffix == ".svg" and profiler.last_session is not None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from benchmarks._flamegraph import write_flamegraph

            write_flamegraph(profiler.last_session, report, f"broker ({report.stem})")
            report.with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
        else:
            report.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
