"""``agentwrit-tools walkthrough``: the credential lifecycle, step by step, against a real broker.

What ``make demo`` runs. It starts the embedded broker on a loopback port (or uses ``AGENTWRIT_BROKER_URL`` with
``AGENTWRIT_ADMIN_SECRET`` when both are set), then does what an operator and an agent runtime do: register an
app, mint a credential for exactly one scope, validate it, delegate a narrower one, watch widening being refused,
release, revoke a whole task, and re-verify the audit log's hash chain. Every figure printed comes from the
broker's answers; no token is ever printed (only its ``jti``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .auditchain import verify_chain
from .client import Broker, Claims, Credential
from .errors import AgentWritError, ScopeViolation

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["run"]

APP_CEILING = ("read:records:*", "write:notes:*")


@contextmanager
def _broker_location(console: Console) -> Iterator[tuple[str, str, str]]:
    """Yield (url, admin secret, where) — a real broker from the environment, else an embedded one."""
    url, secret = os.environ.get("AGENTWRIT_BROKER_URL"), os.environ.get("AGENTWRIT_ADMIN_SECRET")
    if url and secret:
        yield url, secret, f"the broker at {url} (AGENTWRIT_BROKER_URL)"
        return
    from .broker import EmbeddedBroker

    with console.status("starting the embedded broker…"), EmbeddedBroker() as embedded:
        yield embedded.url, embedded.admin_secret, f"the embedded broker at {embedded.url} (SQLite, loopback)"


def _claims_table(title: str, claims: Claims) -> object:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 2))
    table.add_row("sub", claims.sub)
    table.add_row("scope", ", ".join(claims.scope))
    table.add_row("jti", claims.jti)
    table.add_row("task / orch", f"{claims.task_id} / {claims.orch_id}")
    table.add_row("expires in", f"{claims.exp - int(time.time())} s")
    for depth, record in enumerate(claims.delegation_chain, start=1):
        table.add_row(f"chain[{depth}]", f"{record.agent} held {', '.join(record.scope)}")
    return table


def _alive(broker: Broker, credential: Credential) -> str:
    try:
        broker.validate(credential.access_token)
    except AgentWritError:
        return "[red]dead[/]"
    return "[green]alive[/]"


def _step(console: Console, number: int, text: str) -> None:
    console.print()
    console.rule(f"[bold]{number}. {text}", align="left")


def run(console: Console) -> int:
    """Run the walkthrough, printing to ``console``. Returns the process exit code."""
    run_id = uuid.uuid4().hex[:6]
    with _broker_location(console) as (url, admin_secret, where):
        console.print(f"Using {where}.")
        with Broker(url, admin_secret=admin_secret) as operator:
            _step(console, 1, "An operator registers an app with a ceiling")
            app = operator.admin.create_app(f"walkthrough-{run_id}", list(APP_CEILING))
            console.print(f"app [cyan]{app.app_id}[/] may hand out at most: {', '.join(app.scopes)}")
            console.print("(its client secret is shown once, to the operator, and stored hashed by the broker)")

            with Broker(url, app.client_id, app.client_secret) as broker:
                _step(console, 2, "The app mints a credential for exactly one record")
                cred = broker.mint("read:records:P-1042", orch_id="walkthrough", task_id=f"visit-{run_id}", ttl=60)
                console.print(_claims_table("verified claims of the new credential", cred.claims))
                console.print(
                    "Launch token → challenge → Ed25519-signed registration; the claims above were verified "
                    f"({broker.verification_mode}), not taken from the request."
                )

                _step(console, 3, "Anyone holding the token can have the broker validate it")
                checked = broker.validate(cred.access_token)
                console.print(f"POST /v1/token/validate → valid, scope {', '.join(checked.scope)}")

                _step(console, 4, "Delegation can only narrow")
                clinician = broker.mint(
                    ["read:records:P-1042", "write:notes:P-1042"],
                    orch_id="walkthrough",
                    task_id=f"visit-{run_id}",
                    ttl=60,
                )
                delegated = clinician.delegate(cred, "read:records:P-1042", ttl=30)
                console.print(_claims_table("the delegated token (lineage in delegation_chain)", delegated.claims))
                try:
                    clinician.delegate(cred, "write:notes:*")
                except ScopeViolation as refused:
                    console.print(f"widening to write:notes:* → [red]refused[/] by the broker ({refused.status_code})")

                _step(console, 5, "Release: the credential dies the moment the work is done")
                clinician.release()
                cred.release()
                console.print(f"released credential: {_alive(broker, cred)}")
                console.print(f"clinician's credential: {_alive(broker, clinician)}")
                console.print(
                    f"token delegated from it: {_alive(broker, delegated)} (cascade, where the broker has it)"
                )

                _step(console, 6, "An operator kills a whole task at once")
                task = f"incident-{run_id}"
                live = [broker.mint(f"read:records:P-{n}", orch_id="walkthrough", task_id=task) for n in (7, 8, 9)]
                result = operator.admin.revoke("task", task)
                console.print(f"revoke level=task target={task} → {result.count} token(s) revoked")
                console.print("after: " + ", ".join(_alive(broker, c) for c in live))

            _step(console, 7, "The audit log is a hash chain anyone can re-verify")
            events = [event.model_dump() for event in operator.admin.iter_audit_events()]
            report = verify_chain(events)
            _audit_table(console, events[-8:])
            if not report.ok:
                console.print(f"[red]chain broken at {report.first_bad_id}: {report.reason}[/]")
                return 1
            console.print(f"[green]chain verifies[/]: {report.checked} events, each hash linking to the one before")
    console.print()
    console.print("[bold green]Done.[/] Every credential above lived only as long as its step needed.")
    return 0


def _audit_table(console: Console, events: list[dict[str, object]]) -> None:
    from rich.table import Table

    table = Table(title="latest audit events", title_justify="left")
    for column in ("id", "event_type", "outcome", "task_id", "hash"):
        table.add_column(column)
    for event in events:
        outcome = str(event["outcome"])
        colour = "green" if outcome == "success" else "red"
        table.add_row(
            str(event["id"]),
            str(event["event_type"]),
            f"[{colour}]{outcome}[/]",
            str(event["task_id"]),
            str(event["hash"])[:16] + "…",
        )
    console.print(table)
