"""The bare install must stay light: a service that only talks to a real broker pulls in no web framework."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # stdlib from Python 3.11

ROOT = Path(__file__).resolve().parents[2]
# (Not "rich": httpx itself imports it for its CLI when it happens to be installed.)
HEAVY = ("fastapi", "uvicorn", "starlette", "flask", "langchain_core", "openai", "prometheus_client")


def _imported_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_importing_the_package_pulls_in_no_framework() -> None:
    loaded = _imported_after(
        "import agentwrit_tools, agentwrit_tools.scopes, agentwrit_tools.auditchain, agentwrit_tools.client"
    )
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_core_dependencies_exclude_frameworks_and_extras_carry_them() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"]).lower()
    for heavy in ("fastapi", "uvicorn", "flask", "langchain", "openai"):
        assert heavy not in core
    extras = meta["optional-dependencies"]
    assert {"broker", "openai", "langchain", "demo", "dev", "all"} <= set(extras)
    assert any("fastapi" in dep for dep in extras["broker"])
    assert meta["scripts"]["agentwrit-tools"] == "agentwrit_tools.cli:main"
    assert meta["name"] == "agentwrit-tools"


def test_the_agents_sdk_and_mcp_adapters_are_extras_installed_with_all() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"]).lower()
    assert "mcp" not in core
    assert "openai-agents" not in core
    extras = meta["optional-dependencies"]
    assert any(dep.startswith("openai-agents") for dep in extras["agents"])
    assert any(dep.startswith("mcp") for dep in extras["mcp"])
    assert any("agents" in dep and "mcp" in dep for dep in extras["all"])


def test_package_is_typed() -> None:
    assert (ROOT / "agentwrit_tools" / "py.typed").is_file()
