"""Shared by the broker-backed suites: a broker with extensions on or off, a record of what tool and stage bodies
saw, asking the broker what a task minted and whether a token a body saw is dead, and a CLI-started broker.

Test modules import it by name (``from support import …``): ``tests/`` is on the import path through its
``conftest.py``, as each suite's own ``*_support`` module is through its folder.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from agentwrit_tools import Broker, TokenInvalid

KEYRING_SECRET = "test-keyring-secret"  # what PostgreSQL-backed tests seal their signing keys with

MINTING = ("agent_registered", "token_issued")
"""The audit events of anything being minted for a task."""


class HasToken(Protocol):
    @property
    def token(self) -> str: ...


@dataclass(frozen=True)
class Seen:
    """What a body saw of a credential (the token is kept only to prove it dead afterwards)."""

    label: str
    token: str
    jti: str
    agent_id: str
    scope: tuple[str, ...]
    chain: tuple[str, ...]
    claims: Any
    validated: Any = None


class Recorder:
    """Thread-safe record of every credential a tool or stage body held, labelled by the body.

    With ``validate`` (``operator.validate``), each credential is also checked by the broker while it is live,
    and the broker's claims are kept: the lineage asserted is the one the broker vouches for.
    """

    def __init__(self, validate: Callable[[str], Any] | None = None) -> None:
        self.seen: list[Seen] = []
        self._validate = validate
        self._lock = threading.Lock()

    def saw(self, label: str, credential: Any) -> Seen:
        claims = credential.claims
        chain = tuple(record.agent for record in claims.delegation_chain)
        validated = self._validate(credential.access_token) if self._validate is not None else None
        seen = Seen(
            label, credential.access_token, claims.jti, claims.sub, tuple(claims.scope), chain, claims, validated
        )
        with self._lock:
            self.seen.append(seen)
        return seen

    @property
    def runs(self) -> int:
        return len(self.seen)

    @property
    def scopes(self) -> list[tuple[str, ...]]:
        return [seen.scope for seen in self.seen]

    def of(self, label: str) -> list[Seen]:
        return [s for s in self.seen if s.label == label]

    def one(self, label: str) -> Seen:
        [found] = self.of(label)
        return found


def is_dead(operator: Broker, token: str) -> bool:
    """Ask the broker itself (``POST /v1/token/validate``, never a cache)."""
    try:
        operator.validate(token)
    except TokenInvalid:
        return True
    return False


def assert_dead(operator: Broker, seen: Iterable[HasToken]) -> None:
    """No credential outlives its call: the broker rejects every token a body saw."""
    assert all(is_dead(operator, s.token) for s in seen)


def audit(operator: Broker, task_id: str, *event_types: str) -> list[Any]:
    """Every audit event of ``task_id`` (of the given types, when any)."""
    events = list(operator.admin.iter_audit_events(task_id=task_id))
    return [e for e in events if not event_types or e.event_type in event_types]


def assert_nothing_minted(operator: Broker, task_id: str) -> None:
    assert audit(operator, task_id, *MINTING) == []


def registers_with(url: str, launch_token: str, task_id: str, scope: str, *, orch_id: str = "o") -> int:
    """A registration under ``launch_token`` over the raw wire (a fresh key and nonce): the broker's status code.

    What a test asks of a launch token the client fetched ahead: does the broker still take it? A token it issues
    is released at once, so the probe leaves nothing alive.
    """
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with httpx.Client(base_url=url, timeout=10.0) as client:
        nonce = client.get("/v1/challenge").json()["nonce"]
        key = Ed25519PrivateKey.generate()
        body = {
            "launch_token": launch_token,
            "nonce": nonce,
            "public_key": base64.b64encode(key.public_key().public_bytes_raw()).decode(),
            "signature": base64.b64encode(key.sign(bytes.fromhex(nonce))).decode(),
            "orch_id": orch_id,
            "task_id": task_id,
            "requested_scope": [scope],
        }
        answer = client.post("/v1/register", json=body)
        if answer.status_code == 200:
            client.post("/v1/token/release", headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
        return answer.status_code


def feed_reader(running: Any) -> dict[str, str]:
    """``client_id``/``client_secret`` for a Verifier of a running embedded broker, so it can read the revocation
    feed (apps and operators only) and verify locally: an app of its own whose ceiling grants nothing useful."""
    app = running.create_app(f"feed-reader-{next(_feed_readers)}", ["read:revocations:feed"])
    return {"client_id": app.client_id, "client_secret": app.client_secret}


_feed_readers = itertools.count()


def broker_extensions_on_or_off(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The body of a fixture parametrized ``[True, False]``: the session broker (every extension on), or a broker of
    the fixture's own as a reference broker would be (no JWKS, no revocation feed: their routes 404)."""
    if request.param:
        yield request.getfixturevalue("broker")
        return
    from agentwrit_tools.broker import EmbeddedBroker

    db = tmp_path_factory.mktemp(f"{request.fixturename}-plain") / "broker.db"
    with EmbeddedBroker(db_path=db, extensions=False) as running:
        yield running


def start_cli_broker(
    db: Path | str, secret: str, *, wait: float = 60.0, env: dict[str, str] | None = None, args: Iterable[str] = ()
) -> tuple[subprocess.Popen[str], str]:
    """``agentwrit-tools broker serve`` as a real process on an ephemeral loopback port; returns it and its URL.

    ``db`` is a SQLite file or a PostgreSQL URL; ``env`` adds variables (``AGENTWRIT_KEYRING_SECRET``…), ``args``
    flags. The URL comes from the serve command's "listening on" line; the call returns once ``/v1/health``
    answers.
    """
    env = {**os.environ, "AGENTWRIT_ADMIN_SECRET": secret, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwrit_tools.cli", "broker", "serve", "--port", "0", "--db", str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], wait)
    line = proc.stdout.readline() if ready else ""
    match = re.search(r"listening on (http://\S+)", line)
    if match is None:
        stop_process(proc, signal.SIGKILL)
        pytest.fail(f"the broker did not start: {line!r}")
    url = match.group(1)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:  # the line is printed just before uvicorn starts accepting
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.02)
    return proc, url


def stop_process(proc: subprocess.Popen[str], sig: int) -> None:
    """Send ``sig`` and reap the process (``SIGKILL`` for kill -9, ``SIGTERM`` for a clean stop)."""
    proc.send_signal(sig)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
