"""State survives a restart on the same database: revocations, apps, agents, launch tokens, nonces, audit chain."""

from __future__ import annotations

from pathlib import Path

from ._wire import Wire, ok, verify_chain
from .conftest import StartBroker


def test_state_survives_restart(start_broker: StartBroker, tmp_path: Path) -> None:
    db = tmp_path / "persist.db"
    with start_broker(db_path=db) as w:
        app = w.create_app(["read:data:*"])
        live = w.mint(["read:data:x"])
        revoked = w.mint(["read:data:x"])
        released = w.mint(["read:data:x"])
        task_victim = w.mint(["read:data:x"])
        delegate_target = w.mint(["read:other:z"])
        ok(w.revoke("token", revoked.jti))
        ok(w.revoke("task", task_victim.task_id))
        assert w.release(released.token).status_code == 204
        multi_use = w.launch_token(["read:data:*"], single_use=False, ttl=300)
        single_used = w.launch_token(["read:data:*"], ttl=300)
        ok(w.register(w.register_body(single_used, ["read:data:x"])))
        pending_nonce = w.nonce()
        before = w.all_events()
        verify_chain(before)
        feed_before = ok(w.feed(after=0, limit=1000))["revocations"]
        jwks_before = ok(w.get("/.well-known/jwks.json"))

    with start_broker(db_path=db) as w:
        # Revocations (token, task, release) persist; a live token stays live.
        w.assert_invalid(revoked.token)
        w.assert_invalid(task_victim.token)
        w.assert_invalid(released.token)
        assert w.is_valid(live.token)
        assert w.renew(revoked.token).status_code == 401

        # Apps persist, and their credentials still work.
        apps = ok(w.get("/v1/admin/apps", headers=w.admin()))["apps"]
        assert app.app_id in {a["app_id"] for a in apps}
        assert ok(w.app_login(app))["access_token"]

        # Registered agents persist: a pre-restart agent can be a delegate.
        assert ok(w.delegate(live.token, delegate_target.agent_id, ["read:data:x"]))["access_token"]

        # Launch tokens persist, single-use stays consumed, and a nonce issued before the restart still works once.
        assert w.register(w.register_body(multi_use, ["read:data:x"])).status_code == 200
        assert w.register(w.register_body(single_used, ["read:data:x"])).status_code == 401
        assert w.register(w.register_body(multi_use, ["read:data:x"], nonce=pending_nonce)).status_code == 200
        assert w.register(w.register_body(multi_use, ["read:data:x"], nonce=pending_nonce)).status_code == 401

        # The signing key and the revocation feed persist; new revocations continue the sequence.
        assert ok(w.get("/.well-known/jwks.json")) == jwks_before
        ok(w.revoke("token", live.jti))
        feed_after = ok(w.feed(after=0, limit=1000))["revocations"]
        assert feed_after[: len(feed_before)] == feed_before
        assert len(feed_after) > len(feed_before)
        assert feed_after[-1]["seq"] > feed_before[-1]["seq"]
        assert live.jti in {e["target"] for e in feed_after[len(feed_before) :]}

        # The audit chain continues from where it stopped.
        after = w.all_events()
        assert after[: len(before)] == before
        assert len(after) > len(before)
        verify_chain(after)


def test_revocation_survives_restart_without_extensions(start_broker: StartBroker, tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    with start_broker(db_path=db, extensions=False) as w:
        agent = w.mint(["read:data:x"])
        ok(w.revoke("agent", agent.agent_id))
    with start_broker(db_path=db, extensions=False) as w:
        w.assert_invalid(agent.token)


def _count(w: Wire) -> int:
    return int(ok(w.get("/v1/health"))["audit_events_count"])


def test_health_count_survives_restart(start_broker: StartBroker, tmp_path: Path) -> None:
    db = tmp_path / "count.db"
    with start_broker(db_path=db) as w:
        w.mint(["read:data:x"])
        count = _count(w)
        assert count > 0
    with start_broker(db_path=db) as w:
        assert _count(w) >= count
