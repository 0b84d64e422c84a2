"""The broker under test: ``agentwrit-tools broker serve`` as a real subprocess on 127.0.0.1, and an app on it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["LOOPBACK", "App", "BrokerProcess", "check", "free_port", "setup_app"]

LOOPBACK = "127.0.0.1"
SCOPE_CEILING = "read:bench:*"


def free_port() -> int:
    """A port free on the loopback interface right now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _cli_executable() -> str:
    beside_python = Path(sys.executable).with_name("agentwrit-tools")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("agentwrit-tools")
    if found is None:
        raise RuntimeError("the agentwrit-tools command is not installed (run `make setup`)")
    return found


class BrokerProcess:
    """``agentwrit-tools broker serve`` as a real subprocess on a free loopback port, with its own database.

    Rate limits are off: the benchmark authenticates more often than the contract's limits allow.

    Args:
        db_path: an existing database to serve (e.g. one seeded with a million audit events); by default a fresh
            one in a temporary directory. Either way the broker's own admin secret is set at start.
        extensions: False serves the reference contract (``--no-extensions``): the fast path's fallback.
        profile_to: run the broker under pyinstrument and write its report there when it stops (HTML for
            ``.html``, text otherwise).
        startup_timeout: seconds to wait for ``/v1/health``.
        database_url: serve this PostgreSQL database instead of a SQLite file (one replica of several, maybe).
        admin_secret: the admin secret (replicas of one database share it); generated when not given.
        env: more environment for the broker process (``AGENTWRIT_KEYRING_SECRET``, revocation settings).
    """

    def __init__(
        self,
        *,
        db_path: Path | None = None,
        profile_to: Path | None = None,
        startup_timeout: float = 60.0,
        database_url: str | None = None,
        admin_secret: str | None = None,
        env: dict[str, str] | None = None,
        extensions: bool = True,
    ) -> None:
        self.admin_secret = admin_secret or secrets.token_urlsafe(32)
        self._database_url = database_url
        self._env = env or {}
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.health: dict[str, object] = {}
        self._db_path = db_path
        self._profile_to = profile_to
        self._startup_timeout = startup_timeout
        self._extensions = extensions
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the broker is not running")
        return self._process.pid

    def rss_mb(self) -> float:
        """Resident memory of the broker process, in MiB (Linux ``/proc``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmRSS not found")

    def __enter__(self) -> BrokerProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="agentwrit-bench-")
        workdir = Path(self._tmp.name)
        self._log = workdir / "broker.log"
        db = self._db_path or workdir / "b.db"
        command = [_cli_executable(), "broker", "serve", "--host", LOOPBACK, "--port", str(self.port)]
        command += ["--db", self._database_url or str(db), "--no-rate-limits"]
        if not self._extensions:
            command.append("--no-extensions")
        if self._profile_to is not None:
            wrapper = Path(__file__).with_name("_profiled_broker.py")
            command = [sys.executable, str(wrapper), str(self._profile_to.resolve()), *command[1:]]
        env = {**os.environ, "AGENTWRIT_ADMIN_SECRET": self.admin_secret, **self._env}
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            self._wait_until_healthy()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self._startup_timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"the broker exited with code {self._process.returncode} before serving:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = client.get("/v1/health")
                    if response.status_code == 200:
                        self.health = response.json()
                        return
                time.sleep(0.05)
        raise RuntimeError(
            f"the broker did not answer /v1/health within {self._startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None or not self._log.exists():
            return "(no log)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()


def check(response: httpx.Response, what: str) -> dict[str, object]:
    """The JSON body of a success; a benchmark stops at the first unexpected answer."""
    if response.status_code >= 400:
        raise RuntimeError(f"{what} failed: HTTP {response.status_code} {response.text[:300]}")
    body: dict[str, object] = response.json()
    return body


@dataclass(frozen=True)
class App:
    """An app on the broker under test (ceiling ``read:bench:*``), and what using it over the raw wire needs."""

    client_id: str
    client_secret: str
    admin_headers: dict[str, str]
    headers: dict[str, str]


def setup_app(broker: BrokerProcess, name: str = "bench") -> App:
    """Admin auth, create an app whose ceiling is ``read:bench:*``, authenticate as that app."""
    with httpx.Client(base_url=broker.url, timeout=30.0) as client:
        admin = check(client.post("/v1/admin/auth", json={"secret": broker.admin_secret}), "admin auth")
        admin_headers = {"Authorization": f"Bearer {admin['access_token']}"}
        created = check(
            client.post("/v1/admin/apps", json={"name": name, "scopes": [SCOPE_CEILING]}, headers=admin_headers),
            "create app",
        )
        client_id, client_secret = str(created["client_id"]), str(created["client_secret"])
        app = check(
            client.post("/v1/app/auth", json={"client_id": client_id, "client_secret": client_secret}), "app auth"
        )
    return App(client_id, client_secret, admin_headers, {"Authorization": f"Bearer {app['access_token']}"})
