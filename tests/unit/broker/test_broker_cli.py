"""The CLI's refusals: one line on stderr, exit code 2, no traceback, nothing started."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentwrit_tools.cli import COMMANDS, main


@pytest.fixture(autouse=True)
def _no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENTWRIT_ADMIN_SECRET", "AA_ADMIN_SECRET", "AGENTWRIT_BROKER_URL", "AGENTWRIT_KEYRING_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_serve_without_a_secret_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "serve"]) == 2
    assert "AGENTWRIT_ADMIN_SECRET" in _one_line(capsys.readouterr().err)


def test_serve_with_an_unusable_database_path_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AA_ADMIN_SECRET", "s")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["broker", "serve", "--db", str(blocker / "broker.db"), "--port", "0"]) == 2
    assert "cannot open or create the database" in _one_line(capsys.readouterr().err)


def test_serve_with_a_bad_env_value_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AA_ADMIN_SECRET", "s")
    monkeypatch.setenv("AA_MAX_TTL", "forever")
    assert main(["broker", "serve"]) == 2
    assert "AA_MAX_TTL" in _one_line(capsys.readouterr().err)


def test_audit_verify_needs_a_url_and_a_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["audit", "verify"]) == 2
    assert "--url" in _one_line(capsys.readouterr().err)
    assert main(["audit", "verify", "--url", "http://127.0.0.1:9"]) == 2
    assert "AGENTWRIT_ADMIN_SECRET" in _one_line(capsys.readouterr().err)
    monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", "s")
    assert main(["audit", "verify", "--url", "http://127.0.0.1:9"]) == 2  # nothing listens on the discard port
    assert "cannot reach" in _one_line(capsys.readouterr().err)


def test_usage_errors_exit_2_and_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["broker"]) == 2
    assert main(["broker", "serve", "--port", "eighty"]) == 2
    assert main(["--help"]) == 0
    assert "broker" in capsys.readouterr().out


def test_command_table_lists_the_commands() -> None:
    assert {(c.group, c.name) for c in COMMANDS} >= {("broker", "serve"), ("audit", "verify")}


def test_serve_without_the_broker_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", "s")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes "import uvicorn" fail as if not installed
    monkeypatch.delitem(sys.modules, "agentwrit_tools.broker._serve", raising=False)
    assert main(["broker", "serve"]) == 2
    assert "pip install 'agentwrit-tools[broker]'" in _one_line(capsys.readouterr().err)


def test_serve_with_a_bad_forwarded_allow_ips_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AA_ADMIN_SECRET", "s")
    assert main(["broker", "serve", "--forwarded-allow-ips", "proxy.internal", "--port", "0"]) == 2
    assert "forwarded_allow_ips" in _one_line(capsys.readouterr().err)


def test_serve_with_a_wrong_keyring_secret_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker

    db = tmp_path / "sealed.db"
    with EmbeddedBroker(db_path=db, settings=BrokerSettings(keyring_secret="the right one")):
        pass
    monkeypatch.setenv("AA_ADMIN_SECRET", "s")
    monkeypatch.setenv("AGENTWRIT_KEYRING_SECRET", "a wrong one")
    assert main(["broker", "serve", "--db", str(db), "--port", "0"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "AGENTWRIT_KEYRING_SECRET does not open" in line
    assert "a wrong one" not in line
