"""MedAssist's web UI (FastAPI): pick a patient, ask, and watch every credential live and die.

Routes only map requests onto the kit's :class:`~agentwrit_tools.demo.DemoWeb`; what a run does is
:func:`~demo_medassist.agents.ask` or a scenario, exactly as in the terminal.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Header, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from agentwrit_tools.demo import Scenario, ScenarioRun
from agentwrit_tools.demo._hub import SSE_HEADERS
from agentwrit_tools.demo._web import DemoWeb, Page

from . import data
from .agents import MAX_QUESTION, ROLES, ask, problem_with

__all__ = ["create_web_app"]


def _html(page: Page) -> HTMLResponse:
    return HTMLResponse(page.html, status_code=page.status)


def create_web_app(web: DemoWeb) -> FastAPI:
    app = FastAPI(title="MedAssist", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return _html(web.page("index.html", patients=data.PATIENTS, roles=ROLES, max_question=MAX_QUESTION))

    @app.post("/runs", response_class=HTMLResponse)
    def start(
        scenario: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "clinical",
        patient_id: Annotated[str, Form()] = "",
        question: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        if scenario:
            return _html(web.start_named(scenario))
        problem = problem_with(role, patient_id, question)
        if problem is not None:
            return _html(web.reply("Nothing was run", problem))
        name = data.PATIENTS[patient_id]["name"]

        def body(run: ScenarioRun) -> None:
            ask(run, role, patient_id, question)

        title = f"{ROLES[role].split(' — ')[0]} asks about {name} ({patient_id})"
        return _html(web.start(Scenario("question", title, question.strip()[:200], body)))

    @app.get("/runs/{run_id}/events")
    def events(run_id: str, last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
        return StreamingResponse(web.events(run_id, last_event_id), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/approvals/{approval_id}", response_class=HTMLResponse)
    def decide(approval_id: str, decision: Annotated[str, Form()] = "") -> HTMLResponse:
        return _html(web.decide(approval_id, decision))

    @app.get("/audit", response_class=HTMLResponse)
    def audit() -> HTMLResponse:
        return _html(web.audit())

    @app.get("/kit-static/{name}")
    def static(name: str) -> Response:
        found = web.static(name)
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(found.body, media_type=found.media_type, headers={"Cache-Control": "max-age=3600"})

    return app
