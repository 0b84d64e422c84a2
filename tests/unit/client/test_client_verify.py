"""Verification core: local JWKS checks, the revocation bound, feature detection and remote fallback."""

from __future__ import annotations

import time

import jwt
import pytest
from client_fakes import Clock, FakeBroker, drive, ok, problem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agentwrit_tools.client._protocol import RetryPolicy
from agentwrit_tools.client._steps import Call, Response
from agentwrit_tools.client._verify import VerifierCore
from agentwrit_tools.errors import TokenInvalid, TokenRevoked

AGENT = "spiffe://agentwrit.local/agent/o/t/0123456789abcdef"


def _core(clock: Clock, **options: object) -> VerifierCore:
    return VerifierCore(RetryPolicy(), clock=clock, **options)  # type: ignore[arg-type]


def _agent_token(broker: FakeBroker, **extra: object) -> str:
    claims = {"sub": AGENT, "scope": ["read:data:x"], "task_id": "t", "orch_id": "o", **extra}
    return broker.issue(**claims)


def test_local_verification_returns_claims_and_caches_keys() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock)
    claims = drive(core.verify(_agent_token(broker)), broker)
    assert claims.sub == AGENT
    assert claims.scope == ("read:data:x",)
    assert claims.task_id == "t"
    assert core.mode == "local"
    drive(core.verify(_agent_token(broker)), broker)  # same instant: keys cached, feed fresh
    assert broker.paths() == ["GET /.well-known/jwks.json", "GET /v1/revocations"]


def test_the_feed_is_synced_only_when_older_than_the_bound() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, revocation_bound=1.0)
    token = _agent_token(broker)
    drive(core.verify(token), broker)
    clock.advance(0.9)
    drive(core.verify(token), broker)
    assert broker.paths().count("GET /v1/revocations") == 1
    clock.advance(0.2)
    drive(core.verify(token), broker)
    assert broker.paths().count("GET /v1/revocations") == 2
    assert broker.calls[-1].params == {"after": 0, "limit": 1000}


@pytest.mark.parametrize("level", ["token", "agent", "task", "chain"])
def test_each_revocation_level_is_honoured_after_the_bound(level: str) -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, revocation_bound=1.0)
    root = "spiffe://agentwrit.local/agent/o/t/root000000000000"
    token = _agent_token(broker, delegation_chain=[{"agent": root, "scope": ["read:data:*"], "delegated_at": "x"}])
    claims = drive(core.verify(token), broker)
    target = {"token": claims.jti, "agent": AGENT, "task": "t", "chain": root}[level]
    broker.revoke(level, target)
    drive(core.verify(token), broker)  # within the bound: may still pass (that is the stated trade-off)
    clock.advance(1.0)
    with pytest.raises(TokenRevoked) as info:
        drive(core.verify(token), broker)
    assert info.value.level == level
    assert str(info.value) == "token is invalid or expired"


def test_bound_zero_syncs_every_time() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, revocation_bound=0)
    token = _agent_token(broker)
    claims = drive(core.verify(token), broker)
    broker.revoke("token", claims.jti)
    with pytest.raises(TokenRevoked):
        drive(core.verify(token), broker)


def test_feed_pages_are_followed_and_the_cursor_advances() -> None:
    broker, clock = FakeBroker(), Clock()
    for i in range(2500):
        broker.revoke("token", f"jti-{i}")
    core = _core(clock)
    drive(core.verify(_agent_token(broker)), broker)
    assert broker.paths().count("GET /v1/revocations") == 3
    assert core.revocations.after == 2500
    assert len(core.revocations) == 2500
    clock.advance(2)
    drive(core.verify(_agent_token(broker)), broker)
    assert broker.calls[-1].params == {"after": 2500, "limit": 1000}


def test_revocation_check_can_be_skipped_for_a_token_just_issued() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock)
    drive(core.verify(_agent_token(broker), check_revocation=False), broker)
    assert broker.paths() == ["GET /.well-known/jwks.json"]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: _agent_token(b, exp=int(time.time()) - 60),
        lambda b: _agent_token(b, nbf=int(time.time()) + 60),
        lambda b: b.issue(key=Ed25519PrivateKey.generate(), sub=AGENT, scope=[]),  # forged with another key
        lambda b: jwt.encode({"sub": AGENT, "exp": int(time.time()) + 60, "jti": "j"}, "k" * 32, algorithm="HS256"),
        lambda b: jwt.encode({"sub": AGENT, "exp": 9999999999, "jti": "j"}, None, algorithm="none"),
        lambda b: b.issue(scope=["x:y:z"]),  # no sub
        lambda b: "not.a.token",
        lambda b: "",
        lambda b: _agent_token(b)[:-4] + "AAAA",
    ],
)
def test_bad_tokens_are_invalid(mutate: object) -> None:
    broker, clock = FakeBroker(), Clock()
    token = mutate(broker)  # type: ignore[operator]
    with pytest.raises(TokenInvalid) as info:
        drive(_core(clock).verify(token), broker)
    assert token not in str(info.value) or not token


def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, jwks_refetch_interval=10)
    drive(core.verify(_agent_token(broker)), broker)
    for _ in range(5):
        with pytest.raises(TokenInvalid):
            drive(core.verify(broker.issue(kid="rotated", sub=AGENT)), broker)
    assert broker.paths().count("GET /.well-known/jwks.json") == 1
    clock.advance(11)
    broker.kid = "rotated"  # the broker rotated its key id: a legit token with it verifies after a refetch
    drive(core.verify(broker.issue(sub=AGENT)), broker)
    assert broker.paths().count("GET /.well-known/jwks.json") == 2


def test_issuer_and_audience_are_checked_when_configured() -> None:
    broker, clock = FakeBroker(), Clock()
    token = _agent_token(broker, iss="https://broker", aud=["svc-a"])
    assert drive(_core(clock, issuer="https://broker", audience="svc-a").verify(token), broker).aud == ("svc-a",)
    with pytest.raises(TokenInvalid):
        drive(_core(clock, issuer="https://other").verify(token), broker)
    with pytest.raises(TokenInvalid):
        drive(_core(clock, audience="svc-b").verify(token), broker)


def test_no_jwks_means_remote_validation() -> None:
    broker, clock = FakeBroker(jwks=False, feed=False), Clock()
    core = _core(clock)
    claims = drive(core.verify(_agent_token(broker)), broker)
    assert claims.sub == AGENT
    assert core.mode == "remote"
    assert broker.paths() == ["GET /.well-known/jwks.json", "POST /v1/token/validate"]
    drive(core.verify(_agent_token(broker)), broker)
    assert broker.paths()[-1] == "POST /v1/token/validate"
    assert broker.paths().count("GET /.well-known/jwks.json") == 1


def test_no_feed_means_remote_validation_even_with_jwks() -> None:
    broker, clock = FakeBroker(jwks=True, feed=False), Clock()
    core = _core(clock)
    token = _agent_token(broker)
    drive(core.verify(token), broker)
    assert core.mode == "remote"
    assert broker.paths() == ["GET /.well-known/jwks.json", "GET /v1/revocations", "POST /v1/token/validate"]
    broker.revoked.add(broker.claims_of(token)["jti"])
    clock.advance(1.0)
    with pytest.raises(TokenInvalid):
        drive(core.verify(token), broker)


def test_strict_mode_never_touches_the_extensions() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, strict=True)
    drive(core.verify(_agent_token(broker)), broker)
    assert broker.paths() == ["POST /v1/token/validate"]


def test_remote_answers_are_cached_no_longer_than_the_bound() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, strict=True, revocation_bound=1.0)
    token = _agent_token(broker)
    drive(core.verify(token), broker)
    clock.advance(0.5)
    drive(core.verify(token), broker)
    assert broker.paths().count("POST /v1/token/validate") == 1
    broker.revoked.add(broker.claims_of(token)["jti"])
    clock.advance(0.5)
    with pytest.raises(TokenInvalid):
        drive(core.verify(token), broker)


def test_validate_never_uses_the_cache() -> None:
    broker, clock = FakeBroker(), Clock()
    core = _core(clock, strict=True)
    token = _agent_token(broker)
    drive(core.verify(token), broker)
    drive(core.validate(token), broker)
    assert broker.paths().count("POST /v1/token/validate") == 2


def test_a_jwks_without_usable_keys_falls_back_to_remote() -> None:
    broker, clock = FakeBroker(), Clock()
    broker.override(
        "GET", "/.well-known/jwks.json", lambda call: ok({"keys": [{"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}]})
    )
    core = _core(clock)
    drive(core.verify(_agent_token(broker)), broker)
    assert core.mode == "remote"


def test_a_405_on_the_feed_counts_as_absent() -> None:
    broker, clock = FakeBroker(), Clock()
    broker.override("GET", "/v1/revocations", lambda call: problem(405, "method_not_allowed"))
    core = _core(clock)
    drive(core.verify(_agent_token(broker)), broker)
    assert core.mode == "remote"


def test_feed_sync_time_is_when_the_request_started() -> None:
    broker, clock = FakeBroker(), Clock()

    def slow_feed(call: Call) -> Response | None:
        clock.advance(5)  # the answer takes 5 s: knowledge is as old as the request, not the answer
        return None

    broker.override("GET", "/v1/revocations", slow_feed)
    core = _core(clock, revocation_bound=1.0)
    drive(core.verify(_agent_token(broker)), broker)
    assert core.revocations.synced_at == 1000.0
