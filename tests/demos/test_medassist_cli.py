"""MedAssist through its terminal runner: ``agentwrit-tools demo medassist --scenario all --json``, a real process.

Each scenario's JSON lines are checked for what it promises — which credentials were minted for exactly which
scope, what was refused before anything was minted, what the broker and the EHR refused on their own — and every
scenario must end with a ``final_check`` line reporting no live credential among the tokens it saw.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from typing import Any

import httpx
import pytest
from demo_support import CLI, ROOT, CliRun, of_type, run_cli

import demo_medassist

NAMES = [s.name for s in demo_medassist.DEMO.scenarios]


@pytest.fixture(scope="module")
def run_all() -> CliRun:
    done = run_cli(["demo", "medassist", "--scenario", "all", "--json"])
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def scenarios(run_all: CliRun) -> dict[str, list[dict[str, Any]]]:
    return run_all.by_scenario()


def _scopes(lines: list[dict[str, Any]], *types: str) -> set[str]:
    return {scope for line in of_type(lines, *types) for scope in line["scope"]}


def test_every_scenario_runs_in_order_and_ends_with_a_final_check_of_no_live_credential(run_all: CliRun) -> None:
    lines = run_all.lines
    assert list(dict.fromkeys(line["scenario"] for line in lines)) == NAMES
    for name, group in run_all.by_scenario().items():
        assert group[-1]["type"] == "final_check", name
        assert group[-1]["scenario"] == name
        assert group[-1]["live_credentials"] == 0, name
        assert group[-1]["tokens_checked"] >= 1, name
        checked = of_type(group, "token_checked")
        assert len(checked) == group[-1]["tokens_checked"]
        assert not any(line["alive"] for line in checked)
        assert not any(line["type"] == "note" and line["level"] == "warning" for line in group), name
    assert re.search(rf"{len(NAMES)} scenario\(s\) in \d+\.\d s wall time", run_all.stderr)


def test_lines_carry_the_fields_the_trace_promises_and_never_a_token(run_all: CliRun) -> None:
    for line in run_all.lines:
        assert {"scenario", "type", "tool", "scope", "jti", "agent_id"} <= line.keys()
    assert "eyJ" not in run_all.stdout  # a JWS header would start so: no token ever leaves as a trace line


def test_happy_path_mints_one_exact_scope_per_call_and_releases_each(scenarios: dict[str, Any]) -> None:
    lines = scenarios["happy-path"]
    minted = of_type(lines, "minted")
    assert sorted(tuple(m["scope"]) for m in minted) == [("read:labs:P-1042",), ("read:records:P-1042",)]
    assert {m["jti"] for m in minted} <= {r["jti"] for r in of_type(lines, "released")}
    assert all(m["agent_id"].startswith("spiffe://") for m in minted)
    assert len({m["agent_id"] for m in minted}) == 2  # one agent per call, never shared
    assert not of_type(lines, "denied", "rejected")


def test_cross_patient_is_denied_by_the_guard_and_by_the_broker(scenarios: dict[str, Any]) -> None:
    lines = scenarios["cross-patient"]
    (denied,) = of_type(lines, "denied")
    assert denied["reason"] == "outside_ceiling"
    assert denied["missing"] == ["read:labs:P-2000"]
    assert not any("P-2000" in s for s in _scopes(lines, "minted"))
    assert any("broker itself refused" in n["text"] and n["level"] == "refused" for n in of_type(lines, "note"))


def test_prompt_injection_refuses_the_wildcard_and_the_injected_scope_before_minting(scenarios: dict[str, Any]) -> None:
    lines = scenarios["prompt-injection"]
    denied = of_type(lines, "denied")
    assert [d["reason"] for d in denied] == ["unsafe_argument", "unsafe_argument"]
    assert not of_type(lines, "minted")


def test_prescription_flows_through_a_narrowed_delegation_and_widening_is_refused(scenarios: dict[str, Any]) -> None:
    lines = scenarios["prescription-delegation"]
    stages = {line["stage"]: line for line in of_type(lines, "stage_started")}
    clinical, prescription = stages["clinical"], stages["prescription"]
    assert prescription["depth"] == 1
    assert prescription["scope"] == ["write:prescriptions:P-1042"]
    assert prescription["chain"] == [clinical["agent_id"]]
    (write,) = [m for m in of_type(lines, "minted") if m["tool"] == "write_prescription"]
    assert write["scope"] == ["write:prescriptions:P-1042"]
    delegated = {d["jti"]: d for d in of_type(lines, "delegated")}
    assert delegated[write["jti"]]["delegator"] == prescription["agent_id"]
    refused = [n for n in of_type(lines, "note") if n["level"] == "refused"]
    assert [n["scope"] for n in refused] == [["write:prescriptions:*"], ["read:records:P-1042"]]
    answer = [a for a in of_type(lines, "answer") if a["agent"] == "prescription"]
    assert answer
    assert "RX-" in answer[0]["text"]
    assert clinical["agent_id"] in answer[0]["text"]


def test_the_prescription_is_minted_only_after_the_flag_approved_it(scenarios: dict[str, Any]) -> None:
    lines = [line for line in scenarios["prescription-delegation"] if line["tool"] == "write_prescription"]
    types = [line["type"] for line in lines]
    assert types[:3] == ["approval_requested", "approval_granted", "minted"]
    requested, granted = lines[0], lines[1]
    assert requested["scope"] == ["write:prescriptions:P-1042"]
    assert requested["arguments"] == '{"dose_mg":20,"drug":"atorvastatin","patient_id":"P-1042"}'
    assert len(requested["digest"]) == 64
    assert (granted["approver"], granted["recorded"], granted["digest"]) == (
        "flag-approve",
        "broker",
        requested["digest"],
    )


def test_with_deny_the_prescription_is_refused_and_nothing_is_minted_for_it() -> None:
    done = run_cli(["demo", "medassist", "--scenario", "prescription-delegation", "--deny", "--json"])
    assert done.returncode == 0, done.stderr
    lines = done.lines
    writes = [line for line in lines if line["tool"] == "write_prescription"]
    assert [line["type"] for line in writes] == ["approval_requested", "approval_refused", "denied"]
    assert (writes[1]["reason"], writes[1]["approver"]) == ("denied", "flag-deny")
    assert writes[2]["reason"] == "approval_denied"
    assert not any(line["type"] == "minted" and line["tool"] == "write_prescription" for line in lines)
    answers = [a["text"] for a in of_type(lines, "answer") if a["agent"] == "prescription"]
    assert answers == [answers[0]]
    assert answers[0].startswith("No prescription was written")
    checks = [n["text"] for n in of_type(lines, "note") if n["level"] == "ok"]
    assert any("not approved: no credential was minted for the write" in text for text in checks)
    assert lines[-1]["live_credentials"] == 0


def test_ask_prompts_at_the_keyboard_and_a_no_is_a_refusal() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTWRIT_", "LLM_", "OPENAI_"))}
    done = subprocess.run(
        [*CLI, "demo", "medassist", "--scenario", "prescription-delegation", "--ask", "--json"],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Approval needed before write_prescription may run" in done.stderr
    assert '"patient_id": "P-1042"' in done.stderr
    assert "Approve? [y/N]" in done.stderr
    refused = [line for line in CliRun(0, done.stdout, "").lines if line["type"] == "approval_refused"]
    assert [(r["reason"], r["approver"]) for r in refused] == [("denied", "terminal")]


def test_a_token_copied_out_of_a_log_is_refused_four_ways(scenarios: dict[str, Any]) -> None:
    lines = scenarios["stolen-token"]
    refused = [n["text"] for n in of_type(lines, "note") if n["level"] == "refused"]
    assert len(refused) == 4
    for phrase in ("bound to a key", "not signed by the key", "already used", "another URL"):
        assert any(phrase in text for text in refused), phrase
    assert all("401" in text for text in refused)
    assert any("the holder, proving its key afresh, is still served" in n["text"] for n in of_type(lines, "note"))
    assert lines[-1]["tokens_checked"] == 1


def test_billing_agent_gets_no_clinical_authority(scenarios: dict[str, Any]) -> None:
    lines = scenarios["billing-isolation"]
    (denied,) = of_type(lines, "denied")
    assert (denied["tool"], denied["reason"], denied["missing"]) == (
        "get_patient_record",
        "outside_ceiling",
        ["read:records:P-1042"],
    )
    assert _scopes(lines, "minted") == {"read:claims:P-1042", "read:billing:P-1042"}
    assert any("403 insufficient_scope" in n["text"] for n in of_type(lines, "note"))


def test_renewal_swaps_the_jti_keeps_the_scope_and_kills_the_old_token(scenarios: dict[str, Any]) -> None:
    lines = scenarios["renewal"]
    (renewed,) = of_type(lines, "renewed")
    assert renewed["previous_jti"] != renewed["jti"]
    assert renewed["scope"] == ["read:notes:P-1042"]
    checked = {c["jti"]: c["alive"] for c in of_type(lines, "token_checked")}
    assert checked == {renewed["previous_jti"]: False, renewed["jti"]: False}


def test_emergency_revoke_kills_a_task_with_a_call_in_flight(scenarios: dict[str, Any]) -> None:
    lines = scenarios["emergency-revoke"]
    (revoked,) = of_type(lines, "revoked")
    assert revoked["level"] == "task"
    assert revoked["count"] >= 3
    (executed,) = of_type(lines, "executed")
    assert (executed["tool"], executed["outcome"], executed["error"]) == ("chart_review", "error", "BackendRefused")
    assert lines[-1]["tokens_checked"] == 3


def test_natural_expiry_is_never_released_and_dies_at_its_exp(scenarios: dict[str, Any]) -> None:
    lines = scenarios["natural-expiry"]
    (minted,) = of_type(lines, "minted")
    (expired,) = of_type(lines, "expired")
    assert minted["ttl"] == 2
    assert expired["jti"] == minted["jti"]
    assert expired["exp"] == minted["exp"]
    assert not of_type(lines, "released")
    assert expired["time"] >= minted["exp"] - 1  # it was noticed dead only once its exp came (1 s clock grain)


def test_bad_patient_ids_mint_nothing(scenarios: dict[str, Any]) -> None:
    lines = scenarios["bad-patient-id"]
    assert not of_type(lines, "minted")
    denied = of_type(lines, "denied")
    assert [(d["reason"], d["missing"]) for d in denied] == [
        ("outside_ceiling", ["read:labs:P-10x42"]),
        ("unsafe_argument", []),
    ]
    assert any("There is no patient 'P-9999'" in a["text"] for a in of_type(lines, "answer"))


def test_one_scenario_alone_and_the_readable_output() -> None:
    done = run_cli(["demo", "medassist", "--scenario", "cross-patient"], env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "cross-patient" in done.stdout
    assert "denied" in done.stdout
    assert "read:labs:P-2000" in done.stdout
    assert "every one dead" in done.stdout
    assert re.search(r"Exposure over 1 per-call credentials", done.stdout)
    assert re.search(r"1 scenario\(s\) in \d+\.\d s wall time", done.stdout)


def test_an_unknown_scenario_lists_the_valid_ones() -> None:
    done = run_cli(["demo", "medassist", "--scenario", "nope"])
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert "unknown scenario 'nope'" in line
    for name in ["all", *NAMES]:
        assert name in line


def test_a_broker_that_does_not_answer_is_one_line() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    env = {"AGENTWRIT_BROKER_URL": f"http://127.0.0.1:{port}", "AGENTWRIT_ADMIN_SECRET": "x" * 24}
    done = run_cli(["demo", "medassist", "--scenario", "happy-path"], env=env, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"127.0.0.1:{port} does not answer" in line


def test_serve_on_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli(["demo", "medassist", "--serve", "--port", str(port)], timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"127.0.0.1:{port}: already in use" in line


def test_serve_prints_one_url_and_ctrl_c_stops_everything_it_started() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTWRIT_", "LLM_", "OPENAI_"))}
    with subprocess.Popen(
        [*CLI, "demo", "medassist", "--serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment,
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            url = re.search(r"(http://127\.0\.0\.1:\d+)/", first)
            assert url, first
            broker = re.search(r"broker: the embedded broker at (http://\S+)", process.stdout.readline())
            assert broker
            page = httpx.get(url.group(1) + "/", timeout=10)
            assert page.status_code == 200
            assert "MedAssist" in page.text
            assert httpx.get(broker.group(1) + "/v1/health", timeout=10).status_code == 200
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0
            for stopped in (url.group(1), broker.group(1)):
                with pytest.raises(httpx.TransportError):
                    httpx.get(stopped + "/", timeout=2)
        finally:
            if process.poll() is None:
                process.kill()
