"""``agentwrit-tools stand-in serve``: run the stand-in model as a process, for demos driven from elsewhere.

Wired into the main CLI through :func:`add_parser`; every failure a user can cause (a missing or malformed
rules file, a taken port, a non-loopback host) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ..errors import AgentWritError
from ._labels import banner
from ._model import StandInModel
from ._rules import RuleSet
from ._rulesfile import load_rules

__all__ = ["EXIT_USAGE", "add_parser", "configure_serve", "main", "serve_command"]

_PROG = "agentwrit-tools stand-in"
EXIT_USAGE = 2
"""Exit status for a mistake the user can fix (like the main CLI): bad rules file, taken port, non-loopback host."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {port}")
    return port


def configure_serve(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser`` (for CLIs that build their own sub-parsers from a table)."""
    parser.description = (
        "Serve the stand-in model until Ctrl-C: a deterministic, rule-based program speaking the OpenAI API on "
        "loopback. It is not a language model, and says so in every answer. Point an OpenAI client at the printed "
        "base URL with any API key."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8090, help="port to bind, 0 for any free one (default: 8090)")
    parser.add_argument("--rules", type=Path, metavar="RULES.json", help="rules file (JSON); without it, no rules")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    parser.set_defaults(handler=serve_command, _run=serve_command)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stand-in serve`` to the main CLI; the handler is ``args.handler`` (also ``args._run``)."""
    stand_in = subparsers.add_parser(
        "stand-in",
        help="the offline stand-in model (rule-based, not a language model)",
        description="A deterministic, rule-based stand-in that speaks the OpenAI API on loopback, so demos run "
        "without network or API key.",
    )
    commands = stand_in.add_subparsers(dest="stand_in_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve", help="serve the OpenAI API (chat completions, Responses, models) on loopback until interrupted"
    )
    configure_serve(serve)


def _fail(message: str) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def serve_command(args: argparse.Namespace, *, ready: threading.Event | None = None) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status.

    Args:
        args: ``host``, ``port``, ``rules`` (a path or ``None``) and ``verbose``.
        ready: set once the server listens, for callers running this in a thread.
    """
    try:
        rules = RuleSet() if args.rules is None else load_rules(args.rules)
        model = StandInModel(rules, host=args.host, port=args.port).start()
    except AgentWritError as exc:
        return _fail(str(exc))
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        offline_logger = logging.getLogger("agentwrit_tools.offline")
        offline_logger.addHandler(handler)
        offline_logger.setLevel(logging.DEBUG)
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        print(banner(model.base_url, len(rules.rules)), flush=True)
        print(f"Use base_url={model.base_url!r}, any api_key, model={model.model!r}. Ctrl-C stops.", flush=True)
        if ready is not None:
            ready.set()
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        model.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("stand-in model stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stand-in`` commands on their own (the main CLI calls :func:`add_parser` instead)."""
    parser = argparse.ArgumentParser(prog="agentwrit-tools")
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    status: int = args.handler(args)
    return status
