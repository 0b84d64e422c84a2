"""MedAssist: a clinical assistant whose every tool call gets a credential for one patient and one category.

Every credential is bound to its agent's key (the EHR API wants a proof of possession with each request), and a
prescription is written only after a clinician approved exactly that prescription.

Run it with ``agentwrit-tools demo medassist`` (every scenario in the terminal) or ``--serve`` (the web UI).
This package holds only the domain — data, the protected EHR API, tools, agents, stand-in rules, scenarios and
page templates; :mod:`agentwrit_tools.demo` runs it.
"""

from __future__ import annotations

from pathlib import Path

from agentwrit_tools.demo import Demo

from .ehr import create_ehr_api
from .rules import RULES
from .scenarios import SCENARIOS
from .web import create_web_app

__all__ = ["DEMO"]

DEMO = Demo(
    name="medassist",
    title="MedAssist",
    orch_id="medassist",
    app_ceiling=(
        "read:records:*",
        "read:labs:*",
        "read:notes:*",
        "read:formulary:*",
        "write:prescriptions:*",
        "read:billing:*",
        "read:insurance:*",
        "read:claims:*",
        "read:codes:*",
    ),
    scenarios=SCENARIOS,
    rules=RULES,
    backend=create_ehr_api,
    backend_kind="asgi",
    web=create_web_app,
    web_kind="asgi",
    templates=Path(__file__).parent / "templates",
    proof_of_possession=True,
)
