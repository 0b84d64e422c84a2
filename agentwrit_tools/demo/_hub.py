"""``RunHub``: runs started from a web page, and their live trace as Server-Sent Events.

A page starts a run (a scenario, or a free question wrapped as one) and connects to its event stream. The run
works in a background thread; each event is rendered to HTML once and appended to the run's message list, and
every subscriber replays that list from where it is (``Last-Event-ID`` works), so a page that connects late or
reconnects misses nothing. Runs execute one at a time — a demo shares one broker app and one model — and only the
latest few are kept.

The stream is a plain iterator of SSE text, so any framework can serve it: FastAPI's ``StreamingResponse`` and
Flask's ``Response`` both take it as it is.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from jinja2 import Environment

from ..errors import AgentWritError
from ..trace import TraceEvent
from ._render import exposure_fragment, line_fragment, verdict_fragment
from ._runner import ScenarioOutcome, run_scenario
from ._scenario import Scenario
from ._stack import DemoStack

__all__ = ["SSE_HEADERS", "RunHub", "RunRecord", "sse_message"]

log = logging.getLogger("agentwrit_tools.demo")

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
"""Headers for an event-stream response (no caching, no proxy buffering)."""

KEEPALIVE_SECONDS = 15.0


def sse_message(event: str, html: str) -> str:
    """One SSE message (without ``id``): the event name and the HTML, one ``data:`` line per line of it."""
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n\n"


@dataclass
class RunRecord:
    """One run as the page sees it: its title, its rendered messages so far, and whether it is over."""

    id: str
    title: str
    messages: list[str] = field(default_factory=list)
    done: bool = False
    outcome: ScenarioOutcome | None = None


class RunHub:
    """Starts runs for one stack and streams them.

    Args:
        stack: the running demo.
        env: the template environment (the kit's fragments must be findable).
        keep: how many finished runs to remember.
    """

    def __init__(self, stack: DemoStack, env: Environment, *, keep: int = 20) -> None:
        self.stack = stack
        self.env = env
        self._keep = keep
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._changed = threading.Condition()
        self._one_at_a_time = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, scenario: Scenario) -> RunRecord:
        """Start ``scenario`` in the background; returns at once with the record to stream."""
        record = RunRecord(uuid.uuid4().hex[:12], scenario.title)
        with self._changed:
            self._runs[record.id] = record
            while len(self._runs) > self._keep:
                self._runs.popitem(last=False)
        thread = threading.Thread(target=self._work, args=(record, scenario), name=f"demo-run-{record.id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return record

    def get(self, run_id: str) -> RunRecord | None:
        with self._changed:
            return self._runs.get(run_id)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for runs in progress to end (used when shutting down)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _publish(self, record: RunRecord, event: str, html: str) -> None:
        with self._changed:
            record.messages.append(sse_message(event, html))
            self._changed.notify_all()

    def _on_event(self, record: RunRecord, event: TraceEvent) -> None:
        html = line_fragment(self.env, event)
        if html is not None:
            self._publish(record, "trace", html)
        if event.type == "final_check":
            self._publish(record, "verdict", verdict_fragment(self.env, event))

    def _work(self, record: RunRecord, scenario: Scenario) -> None:
        try:
            with self._one_at_a_time:
                outcome = run_scenario(self.stack, scenario, lambda _name, event: self._on_event(record, event))
            record.outcome = outcome
            self._publish(record, "exposure", exposure_fragment(self.env, outcome.report))
        except AgentWritError as exc:
            log.warning("demo run %s could not finish: %s", record.id, type(exc).__name__)
            note = self.env.get_template("kit/problem.html").render(
                text=f"The run could not be finished: the broker did not answer ({type(exc).__name__})."
            )
            self._publish(record, "verdict", note)
        finally:
            with self._changed:
                record.done = True
                record.messages.append(sse_message("done", "done"))
                self._changed.notify_all()

    def stream(self, run_id: str, last_event_id: str | None = None) -> Iterator[str]:
        """The run's messages as SSE text from after ``last_event_id``; ends after the ``done`` message."""
        record = self.get(run_id)
        if record is None:
            yield sse_message("done", "unknown run")
            return
        index = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
        while True:
            with self._changed:
                if index >= len(record.messages) and not record.done:
                    self._changed.wait(KEEPALIVE_SECONDS)
                batch = record.messages[index:]
                finished = record.done
            if not batch and not finished:
                yield ": keep-alive\n\n"
                continue
            for message in batch:
                index += 1
                yield f"id: {index}\n{message}"
            if finished and index >= len(record.messages):
                return
