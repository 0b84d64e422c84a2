"""Revocation rules at four levels, the cascade through delegations and renewal lineage, and the feed."""

from __future__ import annotations

from pathlib import Path

import pytest
from broker_flow import Flow, SyncCore, open_core

from agentwrit_tools.broker import _svc_tokens
from agentwrit_tools.broker._audit import AuditFilter
from agentwrit_tools.broker._problems import Problem


def _feed(core: SyncCore, after: int = 0, limit: int = 1000) -> list[tuple[str, str]]:
    return [(r["level"], r["target"]) for r in core.revocations.feed(after, limit)["revocations"]]


def test_token_level_hits_only_that_jti(flow: Flow) -> None:
    a = flow.register(["read:data:x"])
    b = flow.register(["read:data:x"])
    out = flow.revoke("token", a.claims["jti"])
    assert out == {"revoked": True, "level": "token", "target": a.claims["jti"], "count": 1}
    assert not flow.live(a.token)
    assert flow.live(b.token)


def test_agent_level_hits_every_token_of_that_sub_including_later_ones(flow: Flow) -> None:
    a = flow.register(["read:data:x"])
    renewed = flow.renew(a.token)
    other = flow.register(["read:data:x"])
    assert flow.revoke("agent", a.agent_id)["count"] == 1  # the predecessor was already dead
    assert not flow.live(renewed)
    assert flow.live(other.token)
    # A token delegated to the revoked identity afterwards is born dead.
    delegated = flow.delegate(other, a, ["read:data:x"])
    assert not flow.live(delegated.token)


def test_task_level_hits_the_whole_task_and_nothing_else(flow: Flow) -> None:
    a = flow.register(["read:data:x"], task="t-1")
    b = flow.register(["read:data:y"], task="t-1")
    c = flow.register(["read:data:x"], task="t-2")
    assert flow.revoke("task", "t-1")["count"] == 2
    assert (flow.live(a.token), flow.live(b.token), flow.live(c.token)) == (False, False, True)


def test_chain_level_hits_tokens_whose_chain_starts_at_that_agent(core: SyncCore) -> None:
    flow = Flow(core)
    core.revocations.cascade = False  # isolate the chain rule from the cascade extension
    root = flow.register(["read:data:*"])
    mid = flow.register(["read:data:x"])
    leaf = flow.register(["read:data:x"])
    d1 = flow.delegate(root, mid, ["read:data:x"])
    d2 = flow.delegate(d1, leaf, ["read:data:x"])
    assert d2.claims["delegation_chain"][0]["agent"] == root.agent_id
    assert flow.revoke("chain", root.agent_id)["count"] == 2
    assert not flow.live(d1.token)
    assert not flow.live(d2.token)
    assert flow.live(root.token)  # the root's own token has no chain
    assert flow.live(mid.token)


def test_unknown_level_or_missing_target_is_refused_and_stores_nothing(flow: Flow) -> None:
    for body in ({"level": "user", "target": "x"}, {"level": "token"}, {"level": "token", "target": ""}, {}):
        with pytest.raises(Problem) as info:
            flow.core.call(_svc_tokens.revoke, flow.admin_claims, body)
        assert info.value.status == 400
    assert _feed(flow.core) == []


def test_release_cascades_transitively_and_is_audited(flow: Flow) -> None:
    a = flow.register(["read:data:*"])
    b = flow.register(["read:data:*"])
    c = flow.register(["read:data:*"])
    ab = flow.delegate(a, b, ["read:data:x", "read:data:y"])
    bc = flow.delegate(ab, c, ["read:data:x"])
    flow.release(a.token)
    assert not flow.live(ab.token)
    assert not flow.live(bc.token)
    assert flow.live(b.token)  # b's own registration is not derived from a
    feed = _feed(flow.core)
    assert feed == [("token", a.claims["jti"]), ("token", ab.claims["jti"]), ("token", bc.claims["jti"])]
    cascade_events = [
        e for e in flow.core.audit.query(AuditFilter(), limit=100, offset=0) if e["detail"].startswith("cascade:")
    ]
    assert [e["resource"] for e in cascade_events] == [ab.claims["jti"], bc.claims["jti"]]


def test_revoking_the_renewed_token_still_reaches_what_its_predecessor_delegated(flow: Flow) -> None:
    a = flow.register(["read:data:*"])
    b = flow.register(["read:data:*"])
    early = flow.delegate(a, b, ["read:data:x"])
    renewed = flow.renew(a.token)
    assert not flow.live(a.token)
    assert flow.live(early.token), "renewal must not cascade"
    late = flow.delegate(renewed, b, ["read:data:y"])
    flow.revoke("token", flow.claims(renewed)["jti"])
    assert not flow.live(early.token)
    assert not flow.live(late.token)


def test_renewed_delegated_token_dies_with_its_delegator(flow: Flow) -> None:
    a = flow.register(["read:data:*"])
    b = flow.register(["read:data:*"])
    d = flow.delegate(a, b, ["read:data:x"])
    d_renewed = flow.renew(d.token)
    flow.revoke("agent", a.agent_id)
    assert not flow.live(d_renewed)


def test_delegated_exp_is_capped_at_the_delegator_and_kept_on_renewal(flow: Flow) -> None:
    a = flow.register(["read:data:*"], max_ttl=30)
    b = flow.register(["read:data:*"], max_ttl=3000)
    d = flow.delegate(a, b, ["read:data:x"], ttl=3000)
    assert d.claims["exp"] <= a.claims["exp"]
    renewed = flow.claims(flow.renew(d.token))
    assert renewed["exp"] <= a.claims["exp"]


def test_without_extensions_there_is_no_cascade_and_no_cap(tmp_path: Path) -> None:
    core = open_core(tmp_path / "plain.db", extensions=False)
    try:
        flow = Flow(core)
        a = flow.register(["read:data:*"], max_ttl=30)
        b = flow.register(["read:data:*"])
        d = flow.delegate(a, b, ["read:data:x"], ttl=3000)
        assert d.claims["exp"] > a.claims["exp"]
        flow.release(a.token)
        assert flow.live(d.token)
    finally:
        core.close()


def test_feed_pages_in_seq_order_and_rules_persist(tmp_path: Path) -> None:
    core = open_core(tmp_path / "b.db")
    flow = Flow(core)
    for i in range(5):
        flow.revoke("task", f"task-{i}")
    flow.revoke("task", "task-0")  # the same rule again adds nothing to the feed
    first = core.revocations.feed(0, 2)
    assert [r["target"] for r in first["revocations"]] == ["task-0", "task-1"]
    assert first["has_more"] is True
    rest = core.revocations.feed(first["next_after"], 1000)
    assert [r["target"] for r in rest["revocations"]] == ["task-2", "task-3", "task-4"]
    assert rest["has_more"] is False
    empty = core.revocations.feed(rest["next_after"], 10)
    assert empty == {"revocations": [], "next_after": rest["next_after"], "has_more": False}
    core.close()
    reopened = open_core(tmp_path / "b.db")
    try:
        assert reopened.revocations.is_revoked("j", "s", "task-3", None)
        assert not reopened.revocations.is_revoked("j", "s", "task-9", None)
    finally:
        reopened.close()
