"""Support Tickets in real headless Chromium: a person fills tickets in, submits them and reads what the page says.

The assertions read the page (``expect(locator).to_have_text``…), not the app's internals: the ticket form swapped
for a filled one by a quick-fill button (an HTMX swap), the live trace filling in over Server-Sent Events while
the run is still going, the final verdict from the broker's check, the exposure panel and the audit tab.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from demo_support import served
from playwright.sync_api import expect

import demo_tickets
from demo_tickets.scenarios import TICKETS

# What a person should see in the trace when a quick-filled ticket is submitted, beyond the verdict.
SEEN_FOR_TICKET = {
    "refund": ["verified the sender", "write:refunds:C-1001", "We refunded $49.00", "released"],
    "cross-customer": ["read:billing:C-1002", "outside what the task holds", "Your balance is $49.00"],
    "dangerous-tool": ["delete:accounts:C-1003", "send:email:external", "Support cannot close an account"],
    "anonymous": ["matches no customer", "ended the pipeline here", "could not match the address"],
}

# What a person should see when a scenario button runs a scenario and checks its promises.
SEEN_FOR_SCENARIO = {
    "refund": ["two delegations down from triage", "triage → knowledge → response"],
    "cross-customer": ["the broker itself refused", "403 insufficient_scope"],
    "dangerous-tool": ["delegation only narrows", "still active"],
    "anonymous": ["knowledge and response never started", "audit log agrees"],
    "natural-expiry": ["died on its own at its exp"],
}


@pytest.fixture(scope="module")
def ui() -> Iterator[str]:
    with served(demo_tickets.DEMO) as (url, _stack):
        yield url


def _finished(page: Any) -> Any:
    verdict = page.locator(".run .verdict")
    expect(verdict).to_have_attribute("data-live", "0", timeout=30_000)
    expect(verdict).to_contain_text("every credential is dead")
    return verdict


@pytest.mark.parametrize("name", list(TICKETS))
def test_a_quick_filled_ticket_is_submitted_and_worked_live(ui: str, page: Any, name: str) -> None:
    sender, text = TICKETS[name]
    page.goto(ui)
    expect(page.locator("header .badge.stand-in")).to_have_text("stand-in model")
    expect(page.locator("#ticket-text")).to_have_value("")
    page.click(f"button[data-fill={name}]")
    # The form was swapped for one holding the scenario's ticket: the person reads it before sending it.
    expect(page.locator("#ticket .filled")).to_contain_text(demo_tickets.DEMO.scenario(name).title)
    expect(page.locator("#sender")).to_have_value(sender)
    expect(page.locator("#ticket-text")).to_have_value(text)
    page.click("#ticket button[type=submit]")
    expect(page.locator(".run-title")).to_have_text(f"Ticket from {sender}")
    _finished(page)
    trace = page.locator("ol.trace")
    for seen in SEEN_FOR_TICKET[name]:
        expect(trace).to_contain_text(seen)
    expect(trace.locator("li.t-final_check")).to_have_count(1)


def test_every_scenario_button_runs_its_checks_and_ends_with_every_credential_dead(ui: str, page: Any) -> None:
    page.goto(ui)
    buttons = page.locator("button[data-scenario]")
    expect(buttons).to_have_count(len(demo_tickets.DEMO.scenarios))
    expect(page.locator("button[data-fill]")).to_have_count(len(TICKETS))
    for scenario in demo_tickets.DEMO.scenarios:
        page.click(f"button[data-scenario={scenario.name}]")
        expect(page.locator(".run-title")).to_have_text(scenario.title)
        verdict = _finished(page)
        assert int(verdict.get_attribute("data-checked") or "0") >= 1
        trace = page.locator("ol.trace")
        for seen in SEEN_FOR_SCENARIO[scenario.name]:
            expect(trace).to_contain_text(seen)
        expect(trace.locator("li.t-note.level-warning")).to_have_count(0)


def test_the_trace_fills_in_while_the_run_is_still_going(ui: str, page: Any) -> None:
    page.goto(ui)
    page.click("button[data-scenario=natural-expiry]")
    pending = page.locator(".run .verdict.pending")
    trace = page.locator("ol.trace")
    # A person watches the unreleased credential count down to its exp before the run is over.
    expect(trace).to_contain_text("ttl 5 s")
    expect(trace).to_contain_text("3 s to its exp")
    expect(pending).to_be_visible()
    expect(pending).to_contain_text("running")
    lines_while_running = trace.locator("li").count()
    expect(trace.locator("li.t-expired")).to_have_count(1, timeout=15_000)
    _finished(page)
    assert trace.locator("li").count() > lines_while_running
    page.click(".tabs [data-tab=exposure]")
    row = page.locator(".exposure-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("until exp")


def test_the_exposure_and_audit_tabs_after_a_refund(ui: str, page: Any) -> None:
    page.goto(ui)
    page.click("button[data-scenario=refund]")
    _finished(page)
    page.click(".tabs [data-tab=exposure]")
    rows = page.locator(".exposure-table tbody tr")
    expect(rows).to_have_count(7)
    expect(page.locator(".exposure-table")).to_contain_text("write:refunds:C-1001")
    expect(page.locator(".exposure-summary")).to_contain_text("credentials minted")
    page.click(".tabs [data-tab=audit]")
    expect(page.locator(".audit .verdict")).to_contain_text("Hash chain verified")
    expect(page.locator(".audit-table")).to_contain_text("delegation_created")
    expect(page.locator(".audit-table")).to_contain_text("token_released")


@pytest.mark.parametrize(
    ("sender", "ticket", "reply"),
    [
        ("alice.moreno@example.com", "   ", "Please type the ticket first."),
        ("alice.moreno@example.com", "x" * 4001, "please keep it under 4000"),
        ("", "Please refund my last invoice.", "Please give the address the ticket comes from."),
        ("Alice Moreno", "Please refund my last invoice.", "'Alice Moreno' is not an e-mail address."),
    ],
    ids=["empty", "oversized", "no-sender", "not-an-address"],
)
def test_bad_input_gets_a_plain_reply_and_runs_nothing(
    ui: str, page: Any, sender: str, ticket: str, reply: str
) -> None:
    page.goto(ui)
    page.fill("#sender", sender)
    page.fill("#ticket-text", ticket)
    page.click("#ticket button[type=submit]")
    expect(page.locator(".reply")).to_contain_text(reply)
    expect(page.locator(".reply h2")).to_have_text("Nothing was run")
    expect(page.locator(".run")).to_have_count(0)
    expect(page.locator("#ticket-text")).to_have_value(ticket)  # nothing the person typed is lost
    page.click(".tabs [data-tab=exposure]")
    expect(page.locator("[data-panel=exposure]").first).to_contain_text("nothing was minted")
