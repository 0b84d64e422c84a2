"""``DemoWeb``: what a demo page does, free of any web framework.

Both demos serve the same kinds of request — the page, start a run, stream a run, answer an approval request, the
audit tab, the kit's static files — in different frameworks (FastAPI for MedAssist, Flask for Support Tickets).
The work lives here once; each demo's app only maps routes onto these methods.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import AgentWritError
from ._approvals import ApprovalDesk
from ._hub import RunHub
from ._render import STATIC_DIR, audit_fragment, template_env
from ._scenario import Scenario
from ._stack import DemoStack

__all__ = ["DemoWeb", "Page", "StaticFile"]


@dataclass(frozen=True)
class Page:
    """An HTML answer: status and body."""

    status: int
    html: str


@dataclass(frozen=True)
class StaticFile:
    """A vendored asset: bytes and media type."""

    body: bytes
    media_type: str


class DemoWeb:
    """The framework-neutral half of a demo UI."""

    def __init__(self, stack: DemoStack) -> None:
        self.stack = stack
        self.demo = stack.demo
        folders = [self.demo.templates] if self.demo.templates is not None else []
        self.env = template_env(*folders)
        self.hub = RunHub(stack, self.env)
        self.desk = ApprovalDesk()
        stack.approver = self.desk.approver  # served: a person answers, with the buttons in the live trace
        self._static = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in (".js", ".css")}

    def page(self, template: str, **context: Any) -> Page:
        """A full page from the demo's templates, with ``stack``, ``demo`` and ``title`` in its context."""
        html = self.env.get_template(template).render(
            stack=self.stack, demo=self.demo, title=self.demo.title, scenarios=self.demo.scenarios, **context
        )
        return Page(200, html)

    def reply(self, heading: str, text: str, status: int = 200) -> Page:
        """A plain answer in the trace panel instead of a run (bad input, unknown patient…)."""
        return Page(status, self.env.get_template("kit/reply.html").render(heading=heading, text=text))

    def start(self, scenario: Scenario) -> Page:
        """Start ``scenario``; the fragment that subscribes the page to its live trace."""
        record = self.hub.start(scenario)
        return Page(200, self.env.get_template("kit/run.html").render(run=record))

    def start_named(self, name: str) -> Page:
        """Start a scenario by name; an unknown name gets a reply listing the valid ones."""
        try:
            scenario = self.demo.scenario(name)
        except KeyError:
            valid = ", ".join(s.name for s in self.demo.scenarios)
            return self.reply(
                "Unknown scenario", f"There is no scenario called {name[:40]!r}. Try one of: {valid}.", 404
            )
        return self.start(scenario)

    def events(self, run_id: str, last_event_id: str | None = None) -> Iterator[str]:
        """The run's Server-Sent Events text."""
        return self.hub.stream(run_id, last_event_id)

    def decide(self, approval_id: str, decision: str) -> Page:
        """The page's Approve/Deny button: answer the waiting request ``approval_id``; the fragment that replaces
        the buttons (a 409 saying so when nothing waits under that id any more)."""
        if decision not in ("approve", "deny"):
            return self.reply("Unknown decision", "An approval is answered with approve or deny.", 400)
        answer = self.desk.decide(approval_id, decision == "approve")
        html = self.env.get_template("kit/approval.html").render(answer=answer, approval_id=approval_id[:64])
        return Page(200 if answer is not None else 409, html)

    def audit(self) -> Page:
        """The audit tab (latest events of this demo's tasks, chain verified)."""
        try:
            return Page(200, audit_fragment(self.env, self.stack.operator))
        except AgentWritError as exc:
            return self.reply("Audit log unavailable", f"The broker did not answer ({type(exc).__name__}).", 503)

    def static(self, name: str) -> StaticFile | None:
        """A kit asset by file name (only the vendored files are served; anything else is ``None``)."""
        path = self._static.get(name)
        if path is None:
            return None
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return StaticFile(path.read_bytes(), media_type)
