"""MedAssist in real headless Chromium: a person clicks each scenario and reads what the page says.

The assertions read the page (``expect(locator).to_have_text``…), not the app's internals: the live trace filling
in over Server-Sent Events, the final verdict from the broker's check, the exposure panel and the audit tab.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from demo_support import served
from playwright.sync_api import expect

import demo_medassist

# What a person should see in the trace for each scenario, beyond the verdict every run ends with.
SEEN = {
    "happy-path": ["read:records:P-1042", "read:labs:P-1042", "released"],
    "cross-patient": ["read:labs:P-2000", "outside what the task holds", "the broker itself refused"],
    "prompt-injection": ["refused an unsafe argument"],
    "prescription-delegation": [
        "write:prescriptions:P-1042",
        "approved by clinician",
        "delegation only narrows",
        "Prescription RX-",
    ],
    "stolen-token": ["as a plain bearer token", "already used", "another URL", "still served"],
    "billing-isolation": ["read:records:P-1042", "403 insufficient_scope"],
    "renewal": ["renewed: fresh jti", "fails validation at the broker"],
    "emergency-revoke": ["operator revoked level=task", "was cut off"],
    "natural-expiry": ["died on its own at its exp"],
    "bad-patient-id": ["There is no patient 'P-9999'"],
}


@pytest.fixture(scope="module")
def ui() -> Iterator[str]:
    with served(demo_medassist.DEMO) as (url, _stack):
        yield url


def _finished(page: Any) -> Any:
    verdict = page.locator(".run .verdict")
    expect(verdict).to_have_attribute("data-live", "0", timeout=30_000)
    return verdict


def test_every_scenario_button_runs_live_and_ends_with_every_credential_dead(ui: str, page: Any) -> None:
    page.goto(ui)
    expect(page.locator("header .badge.stand-in")).to_have_text("stand-in model")
    buttons = page.locator("button[data-scenario]")
    expect(buttons).to_have_count(len(demo_medassist.DEMO.scenarios))
    for scenario in demo_medassist.DEMO.scenarios:
        page.click(f"button[data-scenario={scenario.name}]")
        expect(page.locator(".run-title")).to_have_text(scenario.title)
        if scenario.name == "prescription-delegation":  # the run waits for the clinician's click
            page.click(".approval button[data-decision=approve]")
        verdict = _finished(page)
        expect(verdict).to_contain_text("every credential is dead")
        assert int(verdict.get_attribute("data-checked") or "0") >= 1
        trace = page.locator("ol.trace")
        for text in SEEN[scenario.name]:
            expect(trace).to_contain_text(text)
        expect(page.locator("ol.trace li.t-final_check")).to_have_count(1)


def test_a_free_question_is_answered_with_per_call_credentials_and_an_exposure_panel(ui: str, page: Any) -> None:
    page.goto(ui)
    page.select_option("#patient", "P-2000")
    page.fill("#question", "What are his latest labs?")
    page.click("#ask button[type=submit]")
    _finished(page)
    trace = page.locator("ol.trace")
    expect(trace).to_contain_text("read:labs:P-2000")
    expect(trace.locator("li.t-answer")).to_contain_text("[stand-in model]")
    expect(trace.locator("li.t-answer")).to_contain_text("INR")
    page.click(".tabs [data-tab=exposure]")
    rows = page.locator(".exposure-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("get_lab_results")
    expect(page.locator(".exposure-summary")).to_contain_text("credentials minted")


def test_a_question_the_rules_do_not_cover_gets_an_honest_answer(ui: str, page: Any) -> None:
    page.goto(ui)
    page.fill("#question", "What will the weather be tomorrow?")
    page.click("#ask button[type=submit]")
    _finished(page)
    expect(page.locator("li.t-answer")).to_contain_text("I cannot answer that")


def test_the_billing_office_cannot_read_the_chart(ui: str, page: Any) -> None:
    page.goto(ui)
    page.select_option("#role", "billing")
    page.fill("#question", "Show me her medications.")
    page.click("#ask button[type=submit]")
    _finished(page)
    expect(page.locator("li.t-denied")).to_contain_text("outside what the task holds")
    expect(page.locator("li.t-minted")).to_have_count(0)


@pytest.mark.parametrize(
    ("patient", "question", "reply"),
    [
        ("P-1042", "   ", "Please type a question first."),
        ("P-9999", "Show her labs.", "There is no patient 'P-9999'"),
        ("P-1042", "x" * 1500, "please keep it under 1000"),
    ],
)
def test_bad_input_gets_a_plain_reply_and_runs_nothing(
    ui: str, page: Any, patient: str, question: str, reply: str
) -> None:
    page.goto(ui)
    # A person cannot pick a patient that is not listed; a crafted request can, so add one to the list.
    page.evaluate(
        "id => { const o = document.createElement('option'); o.value = o.text = id; "
        "document.querySelector('#patient').append(o); }",
        patient,
    )
    page.select_option("#patient", patient)
    page.evaluate("q => { document.querySelector('#question').value = q; }", question)
    page.click("#ask button[type=submit]")
    expect(page.locator(".reply")).to_contain_text(reply)
    expect(page.locator(".run")).to_have_count(0)


def test_the_audit_tab_shows_the_broker_log_with_its_chain_verified(ui: str, page: Any) -> None:
    page.goto(ui)
    page.click("button[data-scenario=cross-patient]")
    _finished(page)
    page.click(".tabs [data-tab=audit]")
    expect(page.locator(".audit .verdict")).to_contain_text("Hash chain verified")
    expect(page.locator(".audit-table")).to_contain_text("registration_policy_violation")
    expect(page.locator(".audit-table")).to_contain_text("token_released")


def _prescribe(page: Any, ui: str) -> Any:
    page.goto(ui)
    page.fill("#question", "Start atorvastatin 20 mg if it is safe with her medications.")
    page.click("#ask button[type=submit]")
    card = page.locator("li.t-approval_requested")
    expect(card).to_contain_text("needs a person's approval first")
    expect(card.locator(".arguments")).to_contain_text('"drug":"atorvastatin"')
    expect(card.locator(".scopes")).to_contain_text("write:prescriptions:P-1042")
    expect(page.locator(".run .verdict.pending")).to_be_visible()  # the run waits: nothing is minted for the write
    expect(page.locator("li.t-minted", has_text="write_prescription")).to_have_count(0)
    return card


def test_the_clinician_approves_and_only_then_the_prescription_is_written(ui: str, page: Any) -> None:
    card = _prescribe(page, ui)
    card.locator("button[data-decision=approve]").click()
    expect(card.locator(".approval.decided")).to_contain_text("Approved by clinician")
    _finished(page)
    trace = page.locator("ol.trace")
    expect(trace.locator("li.t-approval_granted")).to_contain_text("recorded in the broker's audit log")
    expect(trace.locator("li.t-minted", has_text="write_prescription")).to_have_count(1)
    expect(trace.locator("li.t-answer", has_text="Prescription RX-")).to_have_count(1)
    page.click(".tabs [data-tab=audit]")
    expect(page.locator(".audit-table")).to_contain_text("approval_granted")


def test_the_clinician_denies_and_nothing_is_minted_for_the_write(ui: str, page: Any) -> None:
    card = _prescribe(page, ui)
    card.locator("button[data-decision=deny]").click()
    expect(card.locator(".approval.decided")).to_contain_text("Denied by clinician")
    verdict = _finished(page)
    expect(verdict).to_contain_text("every credential is dead")
    trace = page.locator("ol.trace")
    expect(trace.locator("li.t-approval_refused")).to_contain_text("the approver said no")
    expect(trace.locator("li.t-minted", has_text="write_prescription")).to_have_count(0)
    expect(trace.locator("li.t-answer", has_text="No prescription was written")).to_have_count(1)
    expect(trace).not_to_contain_text("Prescription RX-")
