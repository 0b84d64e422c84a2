"""`agentwrit-tools walkthrough`, the credential tour: it must work end to end on the embedded defaults."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_walkthrough() -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWRIT_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "agentwrit_tools.cli", "walkthrough"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_walkthrough_runs_every_step_against_the_embedded_broker() -> None:
    done = _run_walkthrough()
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "embedded broker" in out
    assert "scope          read:records:P-1042" in out or re.search(r"scope\s+read:records:P-1042", out)
    assert "widening to write:notes:* → refused by the broker (403)" in out
    assert "released credential: dead" in out
    assert "token delegated from it: dead" in out  # cascade on the embedded broker
    assert re.search(r"target=incident-\w+ → 3 token\(s\) revoked", out)
    assert "after: dead, dead, dead" in out
    assert re.search(r"chain verifies: \d+ events", out)
    assert "Traceback" not in done.stderr


def test_walkthrough_never_prints_a_token() -> None:
    out = _run_walkthrough().stdout
    # Compact JWS: three base64url segments; the header of ours always starts with eyJ.
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.", out)
