"""Fixtures for the security suite: a broker configured with an issuer and an audience, two sibling brokers that
share its signing key (one with another issuer, one with another audience), and genuine tokens of every principal.

Everything is real: uvicorn on loopback, SQLite on disk, one PEM key file shared by the three brokers — the setup
in which cross-deployment token confusion is a real risk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_support import AUDIENCE, ISSUER, SIBLING_AUDIENCE, SIBLING_ISSUER, Genuine, Wire, ok, unique, wire_for
from support import feed_reader

from agentwrit_tools import Verifier


@contextlib.contextmanager
def _running(db: Path, key: Path, *, issuer: str, audience: str) -> Iterator[Any]:
    from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker

    settings = BrokerSettings(issuer=issuer, audience=audience, signing_key_path=key)
    with EmbeddedBroker(db_path=db, settings=settings, rate_limits=False) as running:
        yield running


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("security-key")) / "signing-key.pem"


@pytest.fixture(scope="session")
def sec_broker(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> Iterator[Any]:
    """The broker under attack: issuer and audience configured, key in a PEM file."""
    db = Path(tmp_path_factory.mktemp("security-broker")) / "broker.db"
    with _running(db, key_file, issuer=ISSUER, audience=AUDIENCE) as running:
        yield running


@pytest.fixture(scope="session")
def siblings(tmp_path_factory: pytest.TempPathFactory, key_file: Path, sec_broker: Any) -> Iterator[tuple[Any, Any]]:
    """(another issuer, another audience): both sign with the very same key as ``sec_broker``."""
    base = Path(tmp_path_factory.mktemp("security-siblings"))
    with (
        _running(base / "issuer.db", key_file, issuer=SIBLING_ISSUER, audience=AUDIENCE) as by_issuer,
        _running(base / "audience.db", key_file, issuer=ISSUER, audience=SIBLING_AUDIENCE) as by_audience,
    ):
        yield by_issuer, by_audience


@pytest.fixture(scope="module")
def wire(sec_broker: Any) -> Iterator[Wire]:
    with wire_for(sec_broker) as w:
        yield w


def _key_of(running: Any) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(running.core.key.private_raw())


@pytest.fixture(scope="module")
def genuine(wire: Wire, sec_broker: Any, siblings: tuple[Any, Any]) -> Genuine:
    """Fresh genuine tokens per module (admin tokens live 300 s)."""
    task = unique("sec-task")
    agent = wire.mint(["read:records:P-1"], allowed=["read:records:*"], task_id=task, max_ttl=900)
    helper = wire.mint(["read:records:P-1"], task_id=task, max_ttl=900)
    delegated = ok(wire.delegate(agent.token, helper.agent_id, ["read:records:P-1"], ttl=900))["access_token"]
    app = wire.create_app(["read:records:*"])
    jwk = ok(wire.get("/.well-known/jwks.json"))["keys"][0]
    found = Genuine(
        agent=agent.token,
        admin=wire.admin_token(),
        app=wire.app_token(app),
        delegated=delegated,
        task=task,
        broker_key=_key_of(sec_broker),
        jwk=jwk,
    )
    by_issuer, by_audience = siblings
    with wire_for(by_issuer) as other:
        found.sibling_issuer = other.mint(["read:records:*"], task_id=task, max_ttl=900).token
        found.sibling_admin_issuer = other.admin_token()
    with wire_for(by_audience) as other:
        found.sibling_audience = other.mint(["read:records:*"], task_id=task, max_ttl=900).token
        found.sibling_admin_audience = other.admin_token()
    return found


@pytest.fixture(scope="module")
def local_verifier(sec_broker: Any, genuine: Genuine) -> Iterator[Verifier]:
    """The client's local verification (JWKS + revocation feed), configured with the issuer and audience."""
    with Verifier(sec_broker.url, issuer=ISSUER, audience=AUDIENCE, **feed_reader(sec_broker)) as verifier:
        assert verifier.verify(genuine.agent).scope == ("read:records:P-1",)
        assert verifier.verification_mode == "local"
        yield verifier


@pytest.fixture(scope="module")
def remote_verifier(sec_broker: Any, genuine: Genuine) -> Iterator[Verifier]:
    """Remote verification (``POST /v1/token/validate`` every time), same issuer and audience."""
    with Verifier(sec_broker.url, issuer=ISSUER, audience=AUDIENCE, strict_verify=True) as verifier:
        assert verifier.verify(genuine.agent).scope == ("read:records:P-1",)
        assert verifier.verification_mode == "remote"
        yield verifier


def records_api(verifier: Any) -> Any:
    """A FastAPI service protected by the resource-side dependency: ``GET /records/{patient_id}``."""
    from fastapi import Depends, FastAPI

    from agentwrit_tools import Claims
    from agentwrit_tools.resource.fastapi import Requires, install

    api = FastAPI()
    install(api)
    read = Requires(verifier, "read:records:{patient_id}", access_log=None)

    @api.get("/records/{patient_id}")
    async def record(patient_id: str, claims: Claims = Depends(read)) -> dict[str, Any]:  # noqa: B008
        return {"patient_id": patient_id, "jti": claims.jti}

    @api.get("/search")
    async def search(patient_id: str, claims: Claims = Depends(read)) -> dict[str, Any]:  # noqa: B008
        return {"patient_id": patient_id, "jti": claims.jti}

    return api


@pytest.fixture(scope="module")
def records_url(sec_broker: Any) -> Iterator[str]:
    """The FastAPI service over a real uvicorn server, verifying locally with its own verifier."""
    from security_support import serve_asgi

    with (
        Verifier(sec_broker.url, issuer=ISSUER, audience=AUDIENCE, **feed_reader(sec_broker)) as verifier,
        serve_asgi(records_api(verifier)) as url,
    ):
        yield url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The security suite's counts: its tests by outcome, and per advisory what was refused and served."""
    from security_support import ADVISORIES, TALLY

    outcomes: dict[str, int] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        reports = terminalreporter.stats.get(outcome, [])
        outcomes[outcome] = sum(
            1
            for report in reports
            if "security/" in getattr(report, "nodeid", "").split("::")[0]
            and (outcome != "passed" or getattr(report, "when", "call") == "call")
        )
    if not any(outcomes.values()):
        return
    write = terminalreporter.write_line
    terminalreporter.section("security suite")
    write("tests/security: " + ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items()))
    if not any(TALLY.values()):
        return
    write(f"{'advisory':<72} {'attacks refused':>15} {'legitimate served':>17}")
    for name, title in ADVISORIES.items():
        write(f"{title:<72} {TALLY[name]['refused']:>15} {TALLY[name]['served']:>17}")
    write(
        f"{'total':<72} {sum(t['refused'] for t in TALLY.values()):>15} {sum(t['served'] for t in TALLY.values()):>17}"
    )
