"""Shared by the demo suites: the demo CLI run for real, its JSON lines, a served demo UI, and real Chromium.

Browser tests drive Debian's ``chromium`` through Playwright (``executable_path``: no browser download). A
missing Chromium fails the suite with the command that installs it — it is never a skip; ``.ci/run`` installs it.
Screenshots go to ``test-artifacts/`` at the repository root (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentwrit_tools.demo import Demo, DemoStack, LoopbackServer
from agentwrit_tools.demo._web import DemoWeb

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CLI = [sys.executable, "-m", "agentwrit_tools.cli"]


def chromium_executable() -> str:
    """Debian's Chromium; fails (never skips) with the install command when it is missing."""
    for name in (os.environ.get("AGENTWRIT_CHROMIUM", ""), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    pytest.fail("Chromium is needed for the browser tests: apt-get update && apt-get install -y chromium")


@dataclass(frozen=True)
class CliRun:
    """One finished ``agentwrit-tools demo`` process."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def by_scenario(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in self.lines:
            grouped[line["scenario"]].append(line)
        return dict(grouped)


def run_cli(args: Sequence[str], *, timeout: float = 120, env: dict[str, str] | None = None) -> CliRun:
    """Run ``agentwrit-tools <args>`` as a real process, without a model or broker from the environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTWRIT_", "LLM_", "OPENAI_"))}
    environment.update(env or {})
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=environment, cwd=ROOT, check=False
    )
    return CliRun(done.returncode, done.stdout, done.stderr)


def of_type(lines: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] in types]


@contextmanager
def served(demo: Demo) -> Iterator[tuple[str, DemoStack]]:
    """The demo's UI on a loopback port with everything it needs (embedded broker, API, stand-in model)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTWRIT_", "LLM_", "OPENAI_"))}
    assert demo.web is not None
    with DemoStack(demo, environ=environment) as stack:
        web = DemoWeb(stack)
        with LoopbackServer(demo.web(web), kind=demo.web_kind, name=f"{demo.name} UI") as server:
            yield server.url, stack
        web.hub.wait_idle()


def screenshot(page: Any, name: str) -> Path:
    """Save what the page shows now as a test artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
