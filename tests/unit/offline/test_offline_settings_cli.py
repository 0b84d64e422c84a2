"""Real model or stand-in from the environment; the CLI's wiring and its one-line failures (no sockets)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import agentwrit_tools.offline as offline
from agentwrit_tools.offline import ModelSettings, model_settings_from_env
from agentwrit_tools.offline._cli import add_parser, configure_serve, main, serve_command

ROOT = Path(__file__).resolve().parents[3]


def test_no_model_configured_means_use_the_stand_in() -> None:
    assert model_settings_from_env({}) is None
    assert model_settings_from_env({"LLM_BASE_URL": "", "OPENAI_API_KEY": ""}) is None


def test_an_openai_key_selects_openai_with_its_default_endpoint() -> None:
    settings = model_settings_from_env({"OPENAI_API_KEY": "sk-test-123"})
    assert settings == ModelSettings(base_url=None, api_key="sk-test-123", model="gpt-4o-mini")
    assert settings.stand_in is False
    assert "sk-test-123" not in repr(settings)


def test_a_base_url_selects_a_compatible_endpoint_with_or_without_key() -> None:
    settings = model_settings_from_env({"LLM_BASE_URL": "http://127.0.0.1:11434/v1", "LLM_MODEL": "llama3"})
    assert settings is not None
    assert (settings.base_url, settings.model) == ("http://127.0.0.1:11434/v1", "llama3")
    assert settings.api_key  # the openai client refuses an empty key


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert model_settings_from_env() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    settings = model_settings_from_env()
    assert settings is not None
    assert settings.api_key == "sk-env"


def test_add_parser_mounts_stand_in_serve_with_a_handler() -> None:
    parser = argparse.ArgumentParser(prog="agentwrit-tools")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["stand-in", "serve", "--port", "0", "--rules", "r.json"])
    assert args.handler is serve_command
    assert (args.host, args.port, args.rules, args.verbose) == ("127.0.0.1", 0, Path("r.json"), False)
    defaults = parser.parse_args(["stand-in", "serve"])
    assert (defaults.port, defaults.rules) == (8090, None)


def test_configure_serve_fits_a_table_driven_cli() -> None:
    parser = argparse.ArgumentParser(prog="agentwrit-tools")
    configure_serve(parser.add_subparsers(dest="command").add_parser("serve"))
    args = parser.parse_args(["serve", "--host", "::1", "--port", "9", "-v"])
    assert args._run is serve_command
    assert args.handler is serve_command
    assert (args.host, args.port, args.verbose) == ("::1", 9, True)


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_bad_ports_are_usage_errors(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["stand-in", "serve", "--port", port])
    assert caught.value.code == 2
    assert "--port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "no such file"), ("{", "not valid JSON"), (json.dumps([{"name": "x", "when": "("}]), "rules[0]")],
)
def test_rules_file_problems_are_one_line_and_exit_2(
    tmp_path: Path, content: str | None, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["stand-in", "serve", "--port", "0", "--rules", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    (line,) = out.err.splitlines()
    assert line.startswith("agentwrit-tools stand-in: error: ")
    assert words in line
    assert "Traceback" not in out.err


def test_a_non_loopback_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stand-in", "serve", "--host", "0.0.0.0", "--port", "0"]) == 2  # noqa: S104 - the point of the test
    (line,) = capsys.readouterr().err.splitlines()
    assert "loopback only" in line


def test_the_public_names_are_exactly_these() -> None:
    assert sorted(offline.__all__) == sorted(
        [
            "DEFAULT_INJECTION_SUFFIX",
            "MARKER",
            "MODEL_ID",
            "AssistantTurn",
            "Conversation",
            "Decision",
            "FollowUp",
            "InvalidRequest",
            "MadeCall",
            "Misbehaviour",
            "MisbehaviourKind",
            "ModelSettings",
            "PlannedCall",
            "Planner",
            "Rule",
            "RuleSet",
            "RulesError",
            "StandInError",
            "StandInModel",
            "ToolCallSpec",
            "ToolOffer",
            "ToolOutput",
            "UserMessage",
            "load_rules",
            "model_settings_from_env",
            "parse_rules",
        ]
    )
    for name in offline.__all__:
        assert getattr(offline, name) is not None
    assert offline.MODEL_ID == "agentwrit-stand-in"
    assert offline.MARKER == "[stand-in model]"


def test_the_stand_in_needs_no_openai_and_no_web_framework() -> None:
    code = "import sys, agentwrit_tools.offline, agentwrit_tools.offline._cli; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert loaded.isdisjoint({"openai", "fastapi", "uvicorn", "starlette", "flask", "langchain_core"})


def test_every_docstring_says_it_is_not_a_language_model() -> None:
    for thing in (offline, offline.StandInModel, offline.Planner):
        assert "not a language model" in (thing.__doc__ or "").lower()
