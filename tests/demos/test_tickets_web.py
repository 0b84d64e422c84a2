"""The Support Tickets web app over plain HTTP: what its Flask routes answer, below what a browser shows.

Bad input is answered with a reply and runs nothing; a run's Server-Sent Events stream ends with its verdict and
``done``, and a client that reconnects with ``Last-Event-ID`` gets exactly the messages it missed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from demo_support import served

import demo_tickets
from agentwrit_tools.demo import DemoStack
from demo_tickets.scenarios import TICKETS


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[httpx.Client, DemoStack]]:
    with served(demo_tickets.DEMO) as (url, stack), httpx.Client(base_url=url, timeout=30) as client:
        yield client, stack


def _messages(text: str) -> list[tuple[int, str, str]]:
    """``(id, event, data)`` of each SSE message."""
    found = []
    for block in text.split("\n\n"):
        fields = [line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")]
        if not fields:
            continue
        values = {k: "\n".join(v for key, v in fields if key == k) for k, _ in fields}
        found.append((int(values["id"]), values["event"], values.get("data", "")))
    return found


def _stream(client: httpx.Client, run_id: str, last_event_id: str | None = None) -> list[tuple[int, str, str]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    response = client.get(f"/runs/{run_id}/events", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    return _messages(response.text)


@pytest.mark.parametrize(
    ("form", "status", "reply"),
    [
        ({"sender": "alice.moreno@example.com", "ticket": ""}, 422, "Please type the ticket first."),
        ({"sender": "alice.moreno@example.com", "ticket": "y" * 4001}, 422, "please keep it under 4000"),
        ({"sender": "not-an-address", "ticket": "hello"}, 422, "is not an e-mail address"),
        ({"ticket": "hello"}, 422, "Please give the address"),
        ({"scenario": "refunds"}, 404, "Try one of: refund, cross-customer"),
        ({"sender": "alice.moreno@example.com", "ticket": "z" * 200_000}, 413, "a ticket holds up to 4000 characters"),
    ],
    ids=["empty", "oversized", "bad-sender", "no-sender", "unknown-scenario", "huge-request"],
)
def test_bad_input_is_answered_with_a_reply_and_runs_nothing(
    app: tuple[httpx.Client, DemoStack], form: dict[str, str], status: int, reply: str
) -> None:
    client, _stack = app
    answer = client.post("/runs", data=form)
    assert answer.status_code == status
    assert reply in answer.text
    assert "sse-connect" not in answer.text


def test_quick_fill_returns_the_filled_form_and_an_unknown_one_says_which_exist(
    app: tuple[httpx.Client, DemoStack],
) -> None:
    client, _stack = app
    sender, text = TICKETS["dangerous-tool"]
    filled = client.get("/ticket-form", params={"scenario": "dangerous-tool"})
    assert filled.status_code == 200
    assert f'value="{sender}"' in filled.text
    assert text in filled.text
    unknown = client.get("/ticket-form", params={"scenario": "natural-expiry"})
    assert unknown.status_code == 404
    assert "try one of: refund, cross-customer, dangerous-tool, anonymous" in unknown.text
    assert client.get("/kit-static/../../pyproject.toml").status_code == 404
    assert client.get("/kit-static/kit.css").headers["content-type"].startswith("text/css")


def test_a_run_streams_its_trace_then_its_verdict_and_a_reconnect_resumes_where_it_left(
    app: tuple[httpx.Client, DemoStack],
) -> None:
    client, _stack = app
    started = client.post("/runs", data={"sender": "  bob.moreno@example.com ", "ticket": "What do I owe you?"})
    assert started.status_code == 200
    found = re.search(r'sse-connect="/runs/([0-9a-f]+)/events"', started.text)
    assert found, started.text
    run_id = found.group(1)
    messages = _stream(client, run_id)
    ids = [m[0] for m in messages]
    assert ids == list(range(1, len(ids) + 1))
    events = [m[1] for m in messages]
    assert events[-1] == "done"
    assert events[-3:-1] == ["verdict", "exposure"]
    assert events.count("trace") > 10
    verdict = messages[-3][2]
    assert 'data-live="0"' in verdict
    trace = "\n".join(m[2] for m in messages if m[1] == "trace")
    assert "read:billing:C-1002" in trace
    assert "Your balance is $26.00" in trace
    assert "eyJ" not in trace
    resumed = _stream(client, run_id, last_event_id=str(ids[-4]))
    assert [m[0] for m in resumed] == ids[-3:]
    assert [m[1] for m in resumed] == ["verdict", "exposure", "done"]


def test_a_general_question_gets_a_note_and_a_reply_and_nothing_about_money(
    app: tuple[httpx.Client, DemoStack],
) -> None:
    client, _stack = app
    started = client.post("/runs", data={"sender": "chen.wei@example.org", "ticket": "How do I add a teammate?"})
    found = re.search(r'sse-connect="/runs/([0-9a-f]+)/events"', started.text)
    assert found, started.text
    trace = "\n".join(m[2] for m in _stream(client, found.group(1)) if m[1] == "trace")
    assert "category: general" in trace
    assert "read:kb:KB-3" in trace
    assert "a support specialist will follow up" in trace
    assert "write:notes:C-1003" in trace
    (response,) = [li for li in trace.split("</li>") if "stage response starts" in li]
    assert "write:notes:C-1003" in response
    assert "read:billing" not in response  # for a general question the response agent holds no billing at all
