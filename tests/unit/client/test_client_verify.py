"""Verification core: local JWKS checks, the revocation bound, feature detection and remote fallback."""

from __future__ import annotations

import secrets
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


class Wall:
    """A settable wall clock (unix seconds) for the expiry checks and revocation pruning."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_token_revocations_are_forgotten_once_the_token_has_expired() -> None:
    broker, clock, wall = FakeBroker(), Clock(), Wall()
    core = _core(clock, wall=wall, leeway=2.0)
    token = _agent_token(broker, exp=int(wall.now) + 60)
    claims = drive(core.verify(token), broker)
    core.note_revoked("token", claims.jti, claims.exp)  # our own release: exp known from the claims
    broker.revoke("token", "fed-with-exp", exp=int(wall.now) + 60)
    broker.revoke("token", "fed-without-exp")  # a reference-style feed: no exp, revoked_at is now
    broker.revoke("agent", "spiffe://agentwrit.local/agent/o/t/gone")
    clock.advance(2)
    wall.now += 30
    with pytest.raises(TokenRevoked) as info:  # revoked and not yet expired: still refused locally
        drive(core.verify(token), broker)
    assert info.value.level == "token"
    assert len(core.revocations) == 4

    wall.now += 31  # past exp, but within the leeway: still kept and still refused
    clock.advance(2)
    with pytest.raises(TokenRevoked):
        drive(core.verify(token), broker)
    assert len(core.revocations) == 4

    wall.now += 2  # more than the leeway past exp: the exp check refuses it, the entries can go
    clock.advance(2)
    with pytest.raises(TokenInvalid) as expired:
        drive(core.verify(token), broker)
    assert not isinstance(expired.value, TokenRevoked)
    drive(core.verify(_agent_token(broker, exp=int(wall.now) + 60)), broker)  # the next feed sync prunes
    assert len(core.revocations) == 2  # the agent rule, and the entry without exp (bounded by the max TTL)

    wall.now += 86400  # revoked_at + the global max TTL (+ leeway) has passed too
    core.revocations.prune()
    assert len(core.revocations) == 1  # agent/task/chain rules are kept for good


def test_a_token_revoked_without_known_exp_stays_refused_within_the_max_ttl() -> None:
    broker, clock, wall = FakeBroker(), Clock(), Wall()
    core = _core(clock, wall=wall, max_token_ttl=3600)
    token = _agent_token(broker, exp=int(wall.now) + 3000)
    claims = drive(core.verify(token), broker)
    core.note_revoked("token", claims.jti)  # e.g. an operator revoke: no exp at hand
    for _ in range(200):  # many later insertions that expire at once must not evict it
        core.note_revoked("token", secrets.token_hex(8), wall.now - 10)
    wall.now += 2900
    clock.advance(2)
    with pytest.raises(TokenRevoked):
        drive(core.verify(token), broker)
    assert len(core.revocations) == 1


def test_a_later_deadline_for_the_same_jti_wins() -> None:
    broker, clock, wall = FakeBroker(), Clock(), Wall()
    core = _core(clock, wall=wall)
    token = _agent_token(broker, exp=int(wall.now) + 600)
    claims = drive(core.verify(token), broker)
    broker.revoke("token", claims.jti, exp=int(wall.now) + 10)  # an understated exp must not shorten ours
    core.note_revoked("token", claims.jti, claims.exp)
    wall.now += 100
    clock.advance(2)
    with pytest.raises(TokenRevoked):
        drive(core.verify(token), broker)


def test_rfc3339_revoked_at_parses_offsets_and_fractions() -> None:
    from agentwrit_tools.client._verify import _epoch_seconds

    assert _epoch_seconds("1970-01-01T01:00:00.123456789Z") == 3600
    assert _epoch_seconds("1970-01-01T01:00:00+01:00") == 0
    assert _epoch_seconds("1970-01-01T00:00:00-00:30") == 1800
    assert _epoch_seconds("yesterday") is None


def _guarded_feed(call: Call) -> Response | None:
    """A broker that serves its feed to an app bearer only (as the embedded one does)."""
    if call.bearer is None:
        return problem(401, "unauthorized", "missing Authorization header")
    return None


def test_a_guarded_feed_is_read_with_the_apps_bearer() -> None:
    from client_fakes import CLIENT_ID, CLIENT_SECRET

    from agentwrit_tools.client._config import Settings

    broker = FakeBroker()
    broker.override("GET", "/v1/revocations", _guarded_feed)
    core = Settings("http://broker.test", CLIENT_ID, CLIENT_SECRET).build_core()
    drive(core.verifier.verify(_agent_token(broker)), broker)
    assert core.verifier.mode == "local"
    feed_calls = [c for c in broker.calls if c.path == "/v1/revocations"]
    assert feed_calls
    assert all(c.bearer for c in feed_calls)
    assert broker.paths().count("POST /v1/app/auth") == 1


def test_a_guarded_feed_without_credentials_means_remote_validation() -> None:
    broker, clock = FakeBroker(), Clock()
    broker.override("GET", "/v1/revocations", _guarded_feed)
    core = _core(clock)
    claims = drive(core.verify(_agent_token(broker)), broker)
    assert claims.sub == AGENT
    assert core.mode == "remote"
    assert broker.paths()[-1] == "POST /v1/token/validate"


def test_a_refused_feed_login_means_remote_validation_too() -> None:
    from agentwrit_tools.client._config import Settings

    broker = FakeBroker()
    broker.override("GET", "/v1/revocations", _guarded_feed)
    core = Settings("http://broker.test", "someone-else", "wrong-secret").build_core()
    drive(core.verifier.verify(_agent_token(broker)), broker)
    assert core.verifier.mode == "remote"


def test_a_respelled_signature_is_malformed_locally() -> None:
    broker, clock = FakeBroker(), Clock()
    token = _agent_token(broker)
    head, body, sig = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = f"{head}.{body}.{sig[:-1]}{alphabet[alphabet.index(sig[-1]) ^ 1]}"
    core = _core(clock)
    drive(core.verify(token), broker)
    with pytest.raises(TokenInvalid):
        drive(core.verify(respelled), broker)


def test_a_lifetime_beyond_the_max_ttl_is_refused_locally() -> None:
    broker, clock = FakeBroker(), Clock()
    now = int(time.time())
    core = _core(clock, max_token_ttl=600.0)
    drive(core.verify(_agent_token(broker, iat=now, exp=now + 600)), broker)
    with pytest.raises(TokenInvalid):
        drive(core.verify(_agent_token(broker, iat=now, exp=now + 601)), broker)
