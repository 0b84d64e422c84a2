"""Support Tickets' web UI (Flask): submit a ticket, and watch three agents work it with credentials that die.

Routes only map requests onto the kit's :class:`~agentwrit_tools.demo.DemoWeb`; what a run does is
:func:`~demo_tickets.agents.handle_ticket` or a scenario, exactly as in the terminal. A scenario's quick-fill
button swaps the ticket form for one holding its sender and text; submitting the form runs it as any ticket.
"""

from __future__ import annotations

from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from agentwrit_tools.demo import Scenario, ScenarioRun
from agentwrit_tools.demo._hub import SSE_HEADERS
from agentwrit_tools.demo._web import DemoWeb, Page

from . import data
from .agents import MAX_TICKET, handle_ticket, problem_with
from .scenarios import TICKETS

__all__ = ["create_web_app"]

MAX_FORM_BYTES = 64 * 1024
"""Far above any ticket the form accepts (4000 characters); a larger request is refused before it is read."""


def _html(page: Page) -> flask.Response:
    return flask.Response(page.html, status=page.status, mimetype="text/html")


def create_web_app(web: DemoWeb) -> flask.Flask:
    app = flask.Flask("demo_tickets.web", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    shared: dict[str, Any] = {"customers": data.CUSTOMERS, "tickets": TICKETS, "max_ticket": MAX_TICKET}

    def form(sender: str = "", text: str = "", *, filled: str = "", notice: str = "", status: int = 200) -> Page:
        page = web.page("ticket_form.html", sender=sender, text=text, filled=filled, notice=notice, **shared)
        return Page(status, page.html)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: RequestEntityTooLarge) -> flask.Response:
        limit = f"{MAX_TICKET} characters"
        return _html(web.reply("Nothing was run", f"That request is far too large; a ticket holds up to {limit}.", 413))

    @app.get("/")
    def index() -> flask.Response:
        return _html(web.page("index.html", sender="", text="", **shared))

    @app.get("/ticket-form")
    def ticket_form() -> flask.Response:
        name = flask.request.args.get("scenario", "")
        found = TICKETS.get(name)
        if found is None:
            valid = ", ".join(TICKETS)
            return _html(form(notice=f"There is no ticket scenario {name[:40]!r}; try one of: {valid}.", status=404))
        sender, text = found
        return _html(form(sender, text, filled=web.demo.scenario(name).title))

    @app.post("/runs")
    def start() -> flask.Response:
        scenario = flask.request.form.get("scenario", "")
        if scenario:
            return _html(web.start_named(scenario))
        sender = flask.request.form.get("sender", "")
        text = flask.request.form.get("ticket", "")
        problem = problem_with(sender, text)
        if problem is not None:
            return _html(web.reply("Nothing was run", problem, 422))

        def body(run: ScenarioRun) -> None:
            handle_ticket(run, sender, text)

        title = f"Ticket from {sender.strip()}"
        return _html(web.start(Scenario("ticket", title, text.strip()[:200], body)))

    @app.get("/runs/<run_id>/events")
    def events(run_id: str) -> flask.Response:
        stream = web.events(run_id, flask.request.headers.get("Last-Event-ID"))
        return flask.Response(stream, mimetype="text/event-stream", headers=SSE_HEADERS)

    @app.get("/audit")
    def audit() -> flask.Response:
        return _html(web.audit())

    @app.get("/kit-static/<name>")
    def kit_static(name: str) -> flask.Response:
        found = web.static(name)
        if found is None:
            return flask.Response("not found", status=404, mimetype="text/plain")
        return flask.Response(found.body, mimetype=found.media_type, headers={"Cache-Control": "max-age=3600"})

    return app
