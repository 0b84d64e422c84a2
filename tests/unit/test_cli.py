"""The top-level CLI: every command is reachable, and user mistakes get one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwrit_tools.cli import main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("walkthrough", "broker", "audit", "stand-in"):
        assert command in out


def test_stand_in_serve_is_wired_and_reports_a_missing_rules_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"{tmp_path}/nope.json"
    assert main(["stand-in", "serve", "--port", "0", "--rules", missing]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err
    assert "Traceback" not in err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err
