"""Regression: a token the broker issued, then lost on the client's side before it became a credential.

With remote verification a mint is register → validate. When the validate fails (5xx, reset), the client already
holds a live token; giving up without releasing it used to leave it valid until its TTL, held by nobody and
reported nowhere (the trace said only ``mint_failed``). Now the token is released; and when that release fails
too, the trace reports it as ``release_failed`` with its jti and exp, like any other credential that outlives
its call.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fault_proxy import FaultPlan, FaultProxy

from agentwrit_tools import Broker, RetryPolicy, Task, scoped_tool
from agentwrit_tools.broker import EmbeddedBroker


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Any]:
    with EmbeddedBroker(db_path=tmp_path / "broker.db", rate_limits=False) as broker:
        yield broker


def _address(broker: Any) -> tuple[str, int]:
    url = httpx.URL(broker.url)
    return str(url.host), int(url.port or 80)


def _tokens_of(broker: Any, task_id: str) -> dict[str, tuple[int, bool]]:
    def read(core: Any) -> dict[str, tuple[int, bool]]:
        rows = core.store.conn.execute(
            "SELECT jti, sub, task_id, chain_root, exp FROM tokens WHERE task_id = ?", (task_id,)
        ).fetchall()
        return {row[0]: (int(row[4]), core.revocations.is_revoked(*row[:4])) for row in rows}

    found: dict[str, tuple[int, bool]] = broker.call(read)
    return found


def _one_call(broker: Any, faulted: frozenset[str]) -> tuple[Task, list[str], dict[str, tuple[int, bool]]]:
    app = broker.create_app(f"lost-{secrets.token_hex(3)}", ["read:records:*"])
    ran: list[str] = []

    @scoped_tool("read:records:{patient_id}", ttl=30)
    def read_record(patient_id: str, credential: Any) -> str:
        ran.append(credential.claims.jti)
        return "record"

    task_id = f"lost-{secrets.token_hex(4)}"
    plan = FaultPlan(seed=1, rate=1.0, weights={"error_503": 1.0}, paths=faulted)
    with FaultProxy(_address(broker), plan) as proxy:
        retry = RetryPolicy(transport_retries=0)
        with (
            Broker(proxy.url, app.client_id, app.client_secret, strict_verify=True, retry=retry) as client,
            Task(client, orch_id="orch-lost", task_id=task_id, ceiling="read:records:*") as task,
        ):
            result = task.call(read_record, {"patient_id": "P-1"})
            assert result.error_kind == "mint_failed"
    return task, ran, _tokens_of(broker, task_id)


def test_issued_token_whose_verification_fails_is_released(running: Any) -> None:
    task, ran, tokens = _one_call(running, frozenset({"/v1/token/validate"}))
    assert ran == []
    assert len(tokens) == 1, tokens  # the broker did issue one
    [(_exp, revoked)] = tokens.values()
    assert revoked, "the issued token was left alive after its verification failed"
    assert [e.type for e in task.events if e.type in ("mint_failed", "release_failed")] == ["mint_failed"]


def test_issued_token_whose_verification_and_release_fail_is_reported(running: Any) -> None:
    task, ran, tokens = _one_call(running, frozenset({"/v1/token/validate", "/v1/token/release"}))
    assert ran == []
    [(jti, (exp, revoked))] = tokens.items()
    assert not revoked  # nothing could kill it: it lives until exp ...
    failed = [e for e in task.events if e.type == "release_failed"]
    assert [(e.jti, e.exp) for e in failed] == [(jti, exp)]  # ... and the trace says so, with when it dies
