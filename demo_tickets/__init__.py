"""Support Tickets: a help desk whose three agents work each ticket with credentials for one verified customer.

Run it with ``agentwrit-tools demo tickets`` (every scenario in the terminal) or ``--serve`` (the web UI).
This package holds only the domain — data, the protected support API, tools, agents, stand-in rules, scenarios and
page templates; :mod:`agentwrit_tools.demo` runs it.
"""

from __future__ import annotations

from pathlib import Path

from agentwrit_tools.demo import Demo

from .api import create_support_api
from .rules import RULES
from .scenarios import SCENARIOS
from .web import create_web_app

__all__ = ["DEMO"]

DEMO = Demo(
    name="tickets",
    title="Support Tickets",
    orch_id="helpdesk",
    # What the help desk's app may ever hand out. Closing accounts and e-mailing outside are not in it: the
    # broker would refuse them to this app whatever a task asked for.
    app_ceiling=(
        "read:customers:*",
        "read:billing:*",
        "write:refunds:*",
        "write:notes:*",
        "read:kb:*",
        "write:replies:*",
    ),
    scenarios=SCENARIOS,
    rules=RULES,
    backend=create_support_api,
    backend_kind="wsgi",
    web=create_web_app,
    web_kind="wsgi",
    templates=Path(__file__).parent / "templates",
)
