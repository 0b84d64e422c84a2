"""Support Tickets through the terminal runner: ``agentwrit-tools demo tickets`` run as a real process.

One ``--scenario all --json`` run per module; each scenario's promises are then read off its JSON lines — what was
minted for which scope, what was refused before anything was minted, how each handoff narrowed — and every
scenario must close with a ``final_check`` line saying no token it saw is still alive. The mistakes a person can
make on the command line each get one line and exit code 2.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from typing import Any

import httpx
import pytest
from demo_support import CLI, ROOT, CliRun, of_type, run_cli

import demo_tickets

ALICE, BOB, CHEN = "C-1001", "C-1002", "C-1003"
Lines = list[dict[str, Any]]


@pytest.fixture(scope="module")
def everything() -> CliRun:
    done = run_cli(["demo", "tickets", "--scenario", "all", "--json"])
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def scenarios(everything: CliRun) -> dict[str, Lines]:
    return everything.by_scenario()


def _ticket(lines: Lines) -> str:
    """The ticket id, read off the ceiling the pipeline started under."""
    started = of_type(lines, "pipeline_started")[0]
    return next(s.split(":")[-1] for s in started["scope"] if s.startswith("write:replies:"))


def _scopes(lines: Lines, *types: str) -> set[str]:
    return {s for line in of_type(lines, *types) for s in line["scope"]}


def _stages(lines: Lines) -> dict[str, dict[str, Any]]:
    return {line["stage"]: line for line in of_type(lines, "stage_started")}


def _answers(lines: Lines, agent: str) -> list[str]:
    return [line["text"] for line in of_type(lines, "answer") if line["agent"] == agent]


def test_every_scenario_runs_in_order_and_ends_with_a_final_check_of_zero_live_credentials(
    scenarios: dict[str, Lines],
) -> None:
    assert list(scenarios) == [s.name for s in demo_tickets.DEMO.scenarios]
    for name, lines in scenarios.items():
        assert lines[0]["type"] == "scenario_started", name
        last = lines[-1]
        assert last["type"] == "final_check", name
        assert last["scenario"] == name
        assert last["live_credentials"] == 0, name
        assert last["tokens_checked"] >= 1, name
        assert of_type(lines, "final_check") == [last]
        checked = of_type(lines, "token_checked")
        assert len(checked) == last["tokens_checked"]
        assert not any(line["alive"] for line in checked)
        warnings = [line["text"] for line in of_type(lines, "note") if line["level"] == "warning"]
        assert not warnings, f"{name} broke a promise: {warnings}"
        for line in lines:
            assert {"scenario", "type", "tool", "scope", "jti", "agent_id"} <= line.keys()


def test_no_line_carries_a_token_and_the_wall_time_is_printed(everything: CliRun) -> None:
    assert "eyJ" not in everything.stdout
    assert "eyJ" not in everything.stderr
    found = re.fullmatch(r"5 scenario\(s\) in (\d+\.\d) s wall time\n", everything.stderr)
    assert found, everything.stderr
    assert float(found.group(1)) < 60


def test_refund_balance_refund_note_and_reply_each_with_its_own_credential(scenarios: dict[str, Lines]) -> None:
    lines = scenarios["refund"]
    t = _ticket(lines)
    minted = of_type(lines, "minted")
    assert [m["tool"] for m in minted] == [
        "get_customer",
        "search_kb",
        "get_article",
        "get_billing",
        "issue_refund",
        "add_case_note",
        "post_reply",
    ]
    assert [m["scope"] for m in minted] == [
        [f"read:customers:{ALICE}"],
        ["read:kb:*"],
        ["read:kb:KB-12"],
        [f"read:billing:{ALICE}"],
        [f"write:refunds:{ALICE}"],
        [f"write:notes:{ALICE}"],
        [f"write:replies:{t}"],
    ]
    released = {line["jti"] for line in of_type(lines, "released")}
    assert {m["jti"] for m in minted} <= released
    ran = {line["tool"]: line["outcome"] for line in of_type(lines, "executed")}
    assert ran["issue_refund"] == "ok"
    assert not of_type(lines, "denied", "rejected")
    stages = _stages(lines)
    assert [stages[s]["depth"] for s in ("triage", "knowledge", "response")] == [0, 1, 2]
    assert len(stages["triage"]["scope"]) == 6
    assert stages["response"]["scope"] == [
        f"read:billing:{ALICE}",
        f"write:refunds:{ALICE}",
        f"write:notes:{ALICE}",
        f"write:replies:{t}",
    ]
    # Each call's credential was delegated from its stage's token, not minted beside it.
    delegated = {line["jti"]: line["delegator"] for line in of_type(lines, "delegated")}
    refund = next(m for m in minted if m["tool"] == "issue_refund")
    assert delegated[refund["jti"]] == stages["response"]["agent_id"]
    assert "We refunded $49.00" in _answers(lines, "reply")[0]
    assert of_type(lines, "pipeline_finished")[0]["status"] == "completed"


def test_cross_customer_the_other_customers_part_is_denied_and_the_rest_answered(
    scenarios: dict[str, Lines],
) -> None:
    lines = scenarios["cross-customer"]
    denied = of_type(lines, "denied")
    assert [(d["tool"], d["reason"], d["missing"], d["jti"]) for d in denied] == [
        ("get_billing", "outside_ceiling", [f"read:billing:{BOB}"], None)
    ]
    assert not [s for s in _scopes(lines, "minted", "delegated", "stage_started") if BOB in s]
    ran = [(line["tool"], line["scope"], line["outcome"]) for line in of_type(lines, "executed")]
    assert ("get_billing", [f"read:billing:{ALICE}"], "ok") in ran
    assert ("post_reply", [f"write:replies:{_ticket(lines)}"], "ok") in ran
    refused = " ".join(line["text"] for line in of_type(lines, "note") if line["level"] == "refused")
    assert "the broker itself refused" in refused
    assert "403 insufficient_scope" in refused
    reply = _answers(lines, "reply")[0]
    assert "Your balance is $49.00" in reply
    everything = "\n".join(str(line) for line in lines)
    assert "INV-3402" not in everything  # Bob's invoices and balance never reached the trace
    assert "$26.00" not in everything


def test_dangerous_tools_are_refused_before_they_run(scenarios: dict[str, Lines]) -> None:
    lines = scenarios["dangerous-tool"]
    denied = {d["tool"]: d for d in of_type(lines, "denied")}
    assert denied["delete_account"]["missing"] == [f"delete:accounts:{CHEN}"]
    assert denied["send_external_email"]["missing"] == ["send:email:external"]
    assert {d["reason"] for d in denied.values()} == {"outside_ceiling"}
    acted = {line["tool"] for line in of_type(lines, "minted", "executed", "delegated")}
    assert not acted & {"delete_account", "send_external_email"}
    assert _stages(lines)["response"]["scope"] == [f"write:notes:{CHEN}", f"write:replies:{_ticket(lines)}"]
    widening = [line for line in of_type(lines, "note") if "delegation only narrows" in line["text"]]
    assert [w["scope"] for w in widening] == [[f"delete:accounts:{CHEN}"], ["send:email:external"]]
    assert any("still active" in line["text"] for line in of_type(lines, "note"))
    assert "Support cannot close an account" in _answers(lines, "reply")[0]


def test_an_anonymous_ticket_halts_at_triage_with_nothing_customer_scoped(scenarios: dict[str, Lines]) -> None:
    lines = scenarios["anonymous"]
    t = _ticket(lines)
    assert [h["stage"] for h in of_type(lines, "halted")] == ["triage"]
    assert list(_stages(lines)) == ["triage"]
    involved = _scopes(lines, "pipeline_started", "stage_started", "delegated", "minted", "denied", "released")
    assert involved == {f"write:replies:{t}"}
    assert not re.search(r"(customers|billing|refunds|notes|accounts):C-", "\n".join(map(str, lines)))
    assert not [a for a in of_type(lines, "answer") if a["agent"] in ("triage", "knowledge", "response")]
    assert "could not match the address" in _answers(lines, "reply")[0]
    assert any("audit log agrees" in line["text"] for line in of_type(lines, "note") if line["level"] == "ok")


def test_natural_expiry_a_credential_nobody_releases_dies_at_its_exp(scenarios: dict[str, Lines]) -> None:
    lines = scenarios["natural-expiry"]
    (minted,) = of_type(lines, "minted")
    assert minted["ttl"] == 5
    assert minted["scope"] == [f"read:billing:{ALICE}"]
    assert not of_type(lines, "released")
    (expired,) = of_type(lines, "expired")
    assert expired["jti"] == minted["jti"]
    assert 3.5 <= expired["time"] - minted["time"] <= 7.5
    countdown = [line["text"] for line in of_type(lines, "note") if "s to its exp" in line["text"]]
    assert len(countdown) >= 3
    assert lines[-1]["tokens_checked"] == 1


def test_an_unknown_scenario_gets_one_line_naming_the_valid_ones() -> None:
    done = run_cli(["demo", "tickets", "--scenario", "refunds"])
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    for name in ["all", *(s.name for s in demo_tickets.DEMO.scenarios)]:
        assert name in done.stderr


def test_serve_on_a_port_in_use_says_so_in_one_line_and_leaves_nothing_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(["demo", "tickets", "--serve", "--port", str(port)], timeout=60)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert f"127.0.0.1:{port}" in done.stderr
        assert "already in use" in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_starts_everything_prints_its_url_and_stops_cleanly(stop: signal.Signals) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [*CLI, "demo", "tickets", "--serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith(f"Support Tickets: http://127.0.0.1:{port}/"), first
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            page = client.get("/")
            assert page.status_code == 200
            assert "Submit ticket" in page.text
            assert client.get("/kit-static/htmx.min.js").status_code == 200
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopping" in out
    assert "Traceback" not in err
    with socket.socket() as again:  # the port is free again: the UI server is gone
        again.bind(("127.0.0.1", port))
