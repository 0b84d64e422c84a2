"""Running scenarios: each one's events streamed out as they happen, its exposure summary, then the final check.

Every scenario ends the same way whatever its body did: an exposure summary (``scenario_finished``) and a
``final_check`` that validates every token the scenario saw with the broker. A body that raises is reported (by
class name) and still checked — a demo that broke halfway is exactly when leftover credentials would hide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..trace import ExposureReport, TraceEvent
from ._check import CheckResult, check_tokens
from ._events import FinalCheck, ScenarioFinished, ScenarioStarted, TokenChecked
from ._scenario import Output, Scenario, ScenarioRun
from ._stack import DemoStack
from ._witness import SeenToken

__all__ = ["ScenarioOutcome", "run_scenario", "run_scenarios"]

log = logging.getLogger("agentwrit_tools.demo")


@dataclass(frozen=True)
class ScenarioOutcome:
    """How one scenario went.

    Attributes:
        name: the scenario.
        report: the exposure of every credential its tool calls got.
        check: the final check's answer.
        failures: expectations that did not hold.
        error: the class name of an exception the body raised ("" when none).
        wall_time: seconds, check included.
        events: everything it emitted.
    """

    name: str
    report: ExposureReport
    check: CheckResult
    failures: tuple[str, ...]
    error: str
    wall_time: float
    events: tuple[TraceEvent, ...]

    @property
    def passed(self) -> bool:
        """No leftover credential, no broken promise, no crash."""
        return self.check.live_credentials == 0 and not self.failures and not self.error


def _ms(value: float) -> float | None:
    return None if value != value else round(value * 1000, 3)  # NaN when nothing was measured


def run_scenario(stack: DemoStack, scenario: Scenario, output: Output) -> ScenarioOutcome:
    """Run one scenario against ``stack``, streaming its events to ``output``."""
    started = time.monotonic()
    run = ScenarioRun(stack, scenario.name, output)
    run.emit(ScenarioStarted, title=scenario.title, summary=scenario.summary)
    error = ""
    try:
        scenario.run(run)
    except Exception as exc:  # the check below must still run; the class name is all that is shown
        error = type(exc).__name__
        log.warning("scenario %s stopped with %s", scenario.name, error, exc_info=log.isEnabledFor(logging.DEBUG))
        run.note(f"the scenario stopped with an error ({error})", "warning")
    finally:
        run.close()
    report = run.exposure()
    run.emit(
        ScenarioFinished,
        credentials=len(report.calls),
        denied=report.denied + report.rejected,
        window_p50_ms=_ms(report.window.p50),
        run_p50_ms=_ms(report.run_time.p50),
        error=error,
    )

    def checked(seen: SeenToken, alive: bool) -> None:
        run.emit(TokenChecked, jti=seen.jti, agent_id=seen.agent_id, scope=seen.scope, alive=alive)

    check = check_tokens(stack.broker, run.witness, on_token=checked)
    wall = time.monotonic() - started
    run.emit(
        FinalCheck,
        scenario=scenario.name,
        live_credentials=check.live_credentials,
        tokens_checked=check.checked,
        wall_time=round(wall, 3),
    )
    return ScenarioOutcome(scenario.name, report, check, tuple(run.failures), error, wall, tuple(run.events))


def run_scenarios(stack: DemoStack, scenarios: Iterable[Scenario], output: Output) -> list[ScenarioOutcome]:
    """Run several scenarios in order against one stack."""
    return [run_scenario(stack, scenario, output) for scenario in scenarios]
