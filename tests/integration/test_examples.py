"""The README's examples run as a user would run them: a fresh interpreter of the project's venv, offline (no model
key or endpoint in the environment, so the stand-in model answers), and they show what the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(name: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "LLM_BASE_URL", "LLM_MODEL")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_agents_sdk_example() -> None:
    out = _run("agents_sdk.py")
    assert 'get_record: {"patient_id": "P-1042", "name": "Ada Lovelace"}' in out
    assert "get_record: access denied: needs read:records:P-2000, task holds read:records:P-1042" in out
    assert "1 credentials, 0 unreleased; 1 denied" in out


@pytest.mark.slow
def test_the_mcp_example() -> None:
    out = _run("mcp_records.py")
    assert "get_record({'patient_id': 'P-1042'}) -> P-1042: Ada Lovelace, born 1815" in out
    assert "-> access denied: needs read:records:P-2000, task holds read:records:P-1042" in out
    assert "delete_all_records({'confirm': True}) -> unknown tool: 'delete_all_records'" in out
    assert "1 credentials, 0 unreleased; 2 denied" in out
    assert 'without a credential: 401, Bearer resource_metadata="http://127.0.0.1:' in out


@pytest.mark.slow
def test_the_approval_and_proof_of_possession_example() -> None:
    out = _run("approval_and_pop.py")
    assert 'asked: write_prescription {"drug":"atorvastatin","patient_id":"P-1042"}' in out
    assert "atorvastatin: {'patient_id': 'P-1042', 'drug': 'atorvastatin', 'written_by': 'spiffe://" in out
    assert "warfarin: access denied: write_prescription needs a person's approval" in out
    assert "the copied token as a bearer token: 401 (this token is bound to a key" in out
    assert "the copied token with its proof: 401 (the DPoP proof was already used)" in out
    assert "trace: approval_requested, approval_granted, approval_requested, approval_refused" in out
    assert "1 credential(s) minted" in out
