"""The demo kit: what every agentwrit-tools demo needs, written once.

A demo folder (``demo_medassist/``, ``demo_tickets/``) declares only its domain in a :class:`Demo` — tools,
data, the stand-in model's rules, page templates, its protected API, its scenarios. The kit runs it:

* :class:`DemoStack` — the embedded broker (or ``AGENTWRIT_BROKER_URL``), the demo's app, its protected API and
  the stand-in model (or a real one by environment), started together and stopped together.
* :class:`Scenario` / :class:`ScenarioRun` — a named story and the context its body runs in: guard tasks and
  pipeline sinks wired to the trace, a :class:`BackendClient` that presents each call's credential, narration.
* :func:`broker_refuses` / :func:`api_refuses` / :func:`widening_refused` — going around the guard gains nothing:
  the broker and the protected API refuse too; :func:`copy_refused` — a key-bound token copied out of a log is
  worthless without its holder's key.
* :class:`ApprovalDesk` / :func:`flag_approver` — who answers a demo's approval requests: the page's Approve/Deny
  buttons when served, a command-line flag in the terminal (``run.approver``).
* :func:`mint_unreleased` / :func:`watch_expiry` — a credential nobody releases, watched dying at its ``exp``.
* :func:`run_scenario` — runs one, then the exposure summary and the **final check**: every token the scenario
  saw is validated with the broker, and ``live_credentials`` must be 0.
* Terminal output (:class:`RichOutput`, ``--json`` as :class:`JsonLinesOutput`), the web half (:class:`DemoWeb`,
  :class:`RunHub` streaming each run as Server-Sent Events, the exposure panel, the audit tab) and the
  ``agentwrit-tools demo`` command.
"""

from __future__ import annotations

from ._approvals import ApprovalDesk, FlagApprover, flag_approver
from ._check import CheckResult, check_tokens
from ._demo import BackendContext, Demo
from ._describe import Line, describe
from ._events import Answer, FinalCheck, Note, ScenarioFinished, ScenarioStarted, TokenChecked
from ._expiry import mint_unreleased, watch_expiry
from ._probes import api_refuses, broker_refuses, copy_refused, widening_refused
from ._runner import ScenarioOutcome, run_scenario, run_scenarios
from ._scenario import Scenario, ScenarioRun
from ._servers import DemoError, LoopbackServer
from ._stack import DemoStack
from ._witness import Answered, BackendClient, BackendRefused, SeenToken, TokenWitness

__all__ = [
    "Answer",
    "Answered",
    "ApprovalDesk",
    "BackendClient",
    "BackendContext",
    "BackendRefused",
    "CheckResult",
    "Demo",
    "DemoError",
    "DemoStack",
    "FinalCheck",
    "FlagApprover",
    "Line",
    "LoopbackServer",
    "Note",
    "Scenario",
    "ScenarioFinished",
    "ScenarioOutcome",
    "ScenarioRun",
    "ScenarioStarted",
    "SeenToken",
    "TokenChecked",
    "TokenWitness",
    "api_refuses",
    "broker_refuses",
    "check_tokens",
    "copy_refused",
    "describe",
    "flag_approver",
    "mint_unreleased",
    "run_scenario",
    "run_scenarios",
    "watch_expiry",
    "widening_refused",
]
