"""The ``agentwrit-tools`` command line.

::

    agentwrit-tools broker serve [--host 127.0.0.1] [--port 8080] [--db PATH|postgresql://…] [--dev]
                                 [--no-extensions] [--no-rate-limits] [--forwarded-allow-ips IPS]
                                 [--fix-permissions]
    agentwrit-tools broker migrate [--db PATH|postgresql://…]
    agentwrit-tools broker keys rotate [--db PATH|postgresql://…]
    agentwrit-tools audit verify [--url URL]
    agentwrit-tools demo medassist|tickets [--scenario NAME|all] [--json] [--serve [--port N]]

Secrets come from the environment only (``AGENTWRIT_ADMIN_SECRET``, or the reference broker's
``AA_ADMIN_SECRET``; ``AGENTWRIT_KEYRING_SECRET`` to seal the signing keys at rest, required on PostgreSQL;
``AGENTWRIT_DATABASE_URL`` may carry a password), never from flags, so they do not end up in shell history or
``ps`` output (a ``--db`` URL is accepted for convenience: keep its password out of it).

User mistakes (no secret, port in use, unwritable database, missing extra) end with one clear line on stderr
and exit code 2 — never a traceback. ``audit verify`` exits 1 when the chain is broken.

Commands are a table (:data:`COMMANDS`): each entry registers its sub-parser and names its handler, so adding
one (such as the ``walkthrough`` tour) is one function plus one line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .broker import _cli as broker_cli
from .demo._cli import configure as configure_demo
from .errors import AgentWritError
from .offline._cli import configure_serve, serve_command

__all__ = ["COMMANDS", "Command", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake the user can fix; the message is printed as is (one line, no traceback)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


# -- broker ------------------------------------------------------------------------------------------------------


def _broker(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A broker command whose mistakes are printed as one line (see ``broker._cli``)."""

    def command(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except broker_cli.BrokerUsageError as exc:
            raise UsageError(str(exc)) from None

    return command


# -- audit verify -------------------------------------------------------------------------------------------------


def _add_audit_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="broker base URL (default: AGENTWRIT_BROKER_URL)")
    parser.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")


def _fetch_events(url: str, secret: str, timeout: float) -> list[dict[str, Any]]:
    import httpx

    base = url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout) as client:
        try:
            auth = client.post("/v1/admin/auth", json={"secret": secret})
        except httpx.HTTPError:
            raise UsageError(f"cannot reach the broker at {base}") from None
        if auth.status_code != 200:
            raise UsageError(f"admin authentication failed at {base} (HTTP {auth.status_code})")
        headers = {"Authorization": f"Bearer {auth.json()['access_token']}"}
        events: list[dict[str, Any]] = []
        while True:
            try:
                page = client.get("/v1/audit/events", params={"limit": 1000, "offset": len(events)}, headers=headers)
            except httpx.HTTPError:
                raise UsageError(f"lost the connection to the broker at {base}") from None
            if page.status_code != 200:
                raise UsageError(f"reading the audit log failed (HTTP {page.status_code})")
            body = page.json()
            batch = body.get("events") or []
            events.extend(batch)
            if not batch or len(events) >= int(body.get("total", 0)):
                return events


def _audit_verify(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("AGENTWRIT_BROKER_URL")
    if not url:
        raise UsageError("no broker URL: pass --url or set AGENTWRIT_BROKER_URL")
    secret = broker_cli.admin_secret_from_env()
    if secret is None:
        raise UsageError("no admin secret: set AGENTWRIT_ADMIN_SECRET (or AA_ADMIN_SECRET)")
    events = _fetch_events(url, secret, args.timeout)
    from .auditchain import verify_chain

    report = verify_chain(events)
    if report.ok:
        print(f"audit chain OK: {report.checked} events verified")
        return EXIT_OK
    print(
        f"audit chain BROKEN at index {report.first_bad_index} (event {report.first_bad_id or '?'}): "
        f"{report.reason or 'mismatch'}; {report.checked} events verified before it"
    )
    return EXIT_FAILED


# -- command table ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One ``agentwrit-tools <group> [<name>]`` command."""

    group: str
    name: str | None
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _add_walkthrough(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Walk through a credential's life against the embedded broker (or AGENTWRIT_BROKER_URL with "
        "AGENTWRIT_ADMIN_SECRET): app, mint, validate, delegate, release, revoke by task, audit chain."
    )


def _walkthrough(args: argparse.Namespace) -> int:
    try:
        from rich.console import Console

        from .walkthrough import run
    except ImportError as exc:
        raise UsageError(
            f"the walkthrough needs the broker extra ({exc.name} is missing): pip install 'agentwrit-tools[broker]'"
        ) from None
    try:
        return run(Console(emoji=False, highlight=False))
    except AgentWritError as exc:
        _say(f"agentwrit-tools walkthrough: the broker refused a step: {exc}")
        return EXIT_FAILED


def _demo(args: argparse.Namespace) -> int:
    from .demo._cli import DemoUsageError, run_command

    try:
        return run_command(args)
    except DemoUsageError as exc:
        raise UsageError(str(exc)) from None


# Add commands here: each is one function pair plus one line.
COMMANDS: list[Command] = [
    Command("walkthrough", None, "a guided tour of one credential's life", _add_walkthrough, _walkthrough),
    Command("demo", None, "run a demo's scenarios (medassist, tickets) or serve its UI", configure_demo, _demo),
    Command(
        "stand-in",
        "serve",
        "run the offline stand-in model (rule-based, not a language model)",
        configure_serve,
        serve_command,
    ),
    Command(
        "broker",
        "serve",
        "run the embedded AgentWrit-compatible broker",
        broker_cli.configure_serve,
        _broker(broker_cli.serve_command),
    ),
    Command(
        "broker",
        "migrate",
        "create or upgrade the broker's database schema",
        broker_cli.configure_migrate,
        _broker(broker_cli.migrate_command),
    ),
    Command(
        "broker",
        "keys",
        "rotate the broker's signing key (keys rotate)",
        broker_cli.configure_keys,
        _broker(broker_cli.keys_command),
    ),
    Command("audit", "verify", "re-verify a broker's audit hash chain", _add_audit_verify, _audit_verify),
]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentwrit-tools", description="One tool call, one credential.")
    groups = parser.add_subparsers(dest="group", metavar="command")
    groups.required = True
    group_parsers: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for command in COMMANDS:
        if command.name is None:
            sub = groups.add_parser(command.group, help=command.help)
            command.configure(sub)
            sub.set_defaults(_run=command.run)
            continue
        if command.group not in group_parsers:
            group_parser = groups.add_parser(command.group, help=f"{command.group} commands")
            actions = group_parser.add_subparsers(dest="action", metavar="action")
            actions.required = True
            group_parsers[command.group] = actions
        sub = group_parsers[command.group].add_parser(command.name, help=command.help)
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (argparse's own errors also return 2 rather than exiting)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        result: int = args._run(args)
    except UsageError as exc:
        _say(f"agentwrit-tools: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
