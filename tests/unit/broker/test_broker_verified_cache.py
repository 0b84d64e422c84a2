"""The broker's cache of authentic tokens: a lookup instead of a signature check, never instead of the rest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

import pytest
from broker_flow import Flow, SyncCore, open_core

from agentwrit_tools.broker import _jwt
from agentwrit_tools.broker import _svc_tokens as tokens
from agentwrit_tools.broker._jwt import TokenInvalid, encode
from agentwrit_tools.broker._problems import Problem
from agentwrit_tools.broker._verified import VerifiedTokens


def test_tokens_the_broker_signs_are_known_without_a_signature_check(
    core: SyncCore, flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = flow.register(["read:data:x"])

    def no_full_check(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("the full check ran for a token the broker signed itself")

    monkeypatch.setattr(_jwt, "verify", no_full_check)
    assert core.verify(agent.token)["jti"] == agent.claims["jti"]


def test_a_known_token_still_expires(core: SyncCore, flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = flow.register(["read:data:x"], max_ttl=60)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenInvalid):
        core.verify(agent.token)
    assert core.live_claims(agent.token) is None


def test_a_known_token_that_was_revoked_is_refused(core: SyncCore, flow: Flow) -> None:
    agent = flow.register(["read:data:x"])
    core.call(tokens.release, f"Bearer {agent.token}", "/v1/token/release")
    assert core.live_claims(agent.token) is None
    with pytest.raises(Problem) as refused:
        core.authenticate(f"Bearer {agent.token}", required_scope=None, path="/v1/delegate")
    assert refused.value.status == 403


def test_forgeries_never_enter_the_cache(core: SyncCore, flow: Flow) -> None:
    agent = flow.register(["read:data:x"])
    forged = agent.token[:-6] + ("AAAAAA" if not agent.token.endswith("AAAAAA") else "BBBBBB")
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            core.verify(forged)
    assert core.verified.get(forged) is None


def test_a_token_from_another_process_is_checked_once_then_known(tmp_path: Path) -> None:
    first = open_core(tmp_path / "b.db")
    try:
        issued = Flow(first).register(["read:data:x"]).token
    finally:
        first.close()
    second = open_core(tmp_path / "b.db")  # same key and database, empty cache: a restarted broker
    try:
        assert second.verified.get(issued) is None
        assert second.verify(issued)["scope"] == ["read:data:x"]
        assert second.verified.get(issued) is not None
    finally:
        second.close()


def test_callers_get_their_own_copy(core: SyncCore, flow: Flow) -> None:
    agent = flow.register(["read:data:x"])
    core.verify(agent.token)["sub"] = "someone-else"
    assert core.verify(agent.token)["sub"] == agent.agent_id


def test_the_cache_is_a_bounded_lru(core: SyncCore) -> None:
    cache = VerifiedTokens(size=3)
    now = int(time.time())
    made = {
        n: encode({"sub": f"s{n}", "jti": f"j{n}", "exp": now + 60, "nbf": now, "iat": now}, core.key) for n in range(5)
    }
    for n in range(3):
        cache.add(made[n], {"n": n})
    assert cache.get(made[0]) == {"n": 0}  # used: now the most recent
    cache.add(made[3], {"n": 3})
    cache.add(made[4], {"n": 4})
    assert len(cache) == 3
    assert cache.get(made[1]) is None
    assert cache.get(made[2]) is None
    assert cache.get(made[0]) == {"n": 0}
    with pytest.raises(ValueError, match="at least 1"):
        VerifiedTokens(size=0)
