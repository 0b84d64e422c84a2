"""``agentwrit-tools demo NAME``: run a demo's scenarios in the terminal, or serve its UI.

::

    agentwrit-tools demo medassist                       # every scenario, readable output, exposure summary
    agentwrit-tools demo medassist --scenario cross-patient --json
    agentwrit-tools demo tickets --serve --port 8001     # broker, API, model and UI; one URL; Ctrl-C stops all
    agentwrit-tools demo medassist --scenario prescription-delegation --deny   # the approver says no

Calls that need a person's approval are approved by default in the terminal (``--approve``), refused with
``--deny``, or asked at the keyboard with ``--ask``; served, the page's buttons answer them.

Mistakes (an unknown demo or scenario, a port in use, a broker that does not answer) end with one line on
stderr and exit code 2. A run whose scenarios did not all keep their promises exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ..guard import Approver
from ._demo import Demo
from ._servers import DemoError, LoopbackServer

__all__ = ["DEMOS", "configure", "load_demo", "run_command"]

DEMOS = {"medassist": "demo_medassist", "tickets": "demo_tickets"}
"""Demo name → the package that declares it (its ``DEMO``)."""

DEFAULT_PORT = 8000


class DemoUsageError(Exception):
    """A user mistake; the message is printed as one line."""


def load_demo(name: str) -> Demo:
    """The declaration of demo ``name``."""
    module_name = DEMOS.get(name)
    if module_name is None:
        raise DemoUsageError(f"unknown demo {name!r}; the demos are: {', '.join(DEMOS)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise DemoUsageError(
            f"the {name} demo needs {missing!r}: install the demo extra (pip install 'agentwrit-tools[demo]')"
        ) from None
    demo: Demo = module.DEMO
    return demo


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run a demo's scenarios in the terminal (default: all of them), or serve its web UI."
    parser.add_argument("demo", metavar="DEMO", help=f"which demo: {', '.join(DEMOS)}")
    parser.add_argument("--scenario", default="all", help="a scenario's name, or 'all' (the default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per trace event instead")
    parser.add_argument("--serve", action="store_true", help="serve the web UI instead of running scenarios")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port for --serve (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1", help="address for --serve (default 127.0.0.1)")
    answer = parser.add_mutually_exclusive_group()
    answer.add_argument(
        "--approve",
        dest="approval",
        action="store_const",
        const="approve",
        default="approve",
        help="approve every call that needs approval (the default in the terminal)",
    )
    answer.add_argument(
        "--deny", dest="approval", action="store_const", const="deny", help="refuse every call that needs approval"
    )
    answer.add_argument(
        "--ask", dest="approval", action="store_const", const="ask", help="ask at the keyboard for each one"
    )


def run_command(args: argparse.Namespace) -> int:
    """The command's body; raises :class:`DemoUsageError` for mistakes."""
    demo = load_demo(args.demo)
    if args.serve:
        return _serve(demo, args.host, args.port)
    try:
        scenarios = demo.select(args.scenario)
    except KeyError:
        valid = ", ".join(["all", *(s.name for s in demo.scenarios)])
        raise DemoUsageError(f"unknown scenario {args.scenario!r} for {demo.name}; choose one of: {valid}") from None
    from ._runner import run_scenarios
    from ._stack import DemoStack

    started = time.monotonic()
    try:
        with DemoStack(demo) as stack:
            stack.approver = _approver(args.approval)
            output, console = _output(args.json)
            if console is not None:
                console.print(f"[bold]{demo.title}[/] — {len(scenarios)} scenario(s)")
                console.print(f"Broker: {stack.broker_where}")
                console.print(f"Model: {stack.model_where}")
                console.print(f"Protected API: {stack.backend_url}")
            outcomes = run_scenarios(stack, scenarios, output)
    except DemoError as exc:
        raise DemoUsageError(str(exc)) from None
    wall = time.monotonic() - started
    if console is not None:
        from ._console import print_summary

        print_summary(console, outcomes, wall)
    else:
        print(f"{len(outcomes)} scenario(s) in {wall:.1f} s wall time", file=sys.stderr)
    return 0 if all(o.passed for o in outcomes) else 1


def _approver(choice: str) -> Approver:
    if choice == "ask":
        from ..guard import cli_approver

        return cli_approver(name="terminal")
    from ._approvals import flag_approver

    return flag_approver(choice == "approve")


def _output(as_json: bool) -> tuple[Any, Any]:
    if as_json:
        from ._console import JsonLinesOutput

        return JsonLinesOutput(sys.stdout), None
    from rich.console import Console

    from ._console import RichOutput

    console = Console(emoji=False, highlight=False)
    return RichOutput(console), console


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (``kill``, ``timeout``, a service manager) stops a served demo the way Ctrl-C does, cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(demo: Demo, host: str, port: int) -> int:
    if demo.web is None:
        raise DemoUsageError(f"the {demo.name} demo has no web UI")
    from ._stack import DemoStack
    from ._web import DemoWeb

    try:
        with DemoStack(demo) as stack:
            web = DemoWeb(stack)
            server = LoopbackServer(demo.web(web), kind=demo.web_kind, name=f"{demo.name} UI", host=host, port=port)
            with server:
                print(f"{demo.title}: {server.url}/  (Ctrl-C stops it and everything it started)", flush=True)
                print(f"  broker: {stack.broker_where}", flush=True)
                print(f"  model: {stack.model_where}", flush=True)
                try:
                    with _sigterm_interrupts():
                        threading.Event().wait()
                except KeyboardInterrupt:
                    print("stopping…", flush=True)
    except DemoError as exc:
        raise DemoUsageError(str(exc)) from None
    return 0
