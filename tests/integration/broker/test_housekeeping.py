"""Housekeeping in a running broker (SQLite, the embedded default): expired state goes in the background, in
bounded batches; the audit log stays whole."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agentwrit_tools import Broker
from agentwrit_tools.auditchain import verify_chain
from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker


def _count(broker: Any, table: str) -> int:
    def read(core: Any) -> int:
        return int(core.store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    return int(broker.call(read))


def test_expired_nonces_and_launch_tokens_are_purged_while_serving_and_no_audit_event_is(tmp_path: Path) -> None:
    settings = BrokerSettings(housekeeping_interval=0.2, purge_batch=3, nonce_ttl=1, launch_token_ttl=1)
    with EmbeddedBroker(db_path=tmp_path / "b.db", settings=settings, rate_limits=False) as running:
        import httpx

        with httpx.Client(base_url=running.url) as http, Broker(running.url, admin_secret=running.admin_secret) as op:
            for _ in range(10):
                assert http.get("/v1/challenge").status_code == 200
            for n in range(7):
                op.admin.create_launch_token(f"hk-{n}", ["read:data:x"], ttl=1)
            assert _count(running, "nonces") == 10
            events = list(op.admin.iter_audit_events())
            deadline = time.monotonic() + 10
            while _count(running, "nonces") or _count(running, "launch_tokens"):
                assert time.monotonic() < deadline, "housekeeping did not purge expired state"
                time.sleep(0.1)
            after = list(op.admin.iter_audit_events())
    assert after[: len(events)] == events  # nothing purged from the log
    assert verify_chain([e.model_dump() for e in after]).ok
