"""App/admin sessions: lazy, cached, refreshed ahead of expiry, one re-login on 401."""

from __future__ import annotations

import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, Clock, FakeBroker, drive, problem

from agentwrit_tools.client._admin import app_login
from agentwrit_tools.client._protocol import RetryPolicy
from agentwrit_tools.client._session import TokenSession, refresh_margin
from agentwrit_tools.client._steps import Call, Exclusive, Response
from agentwrit_tools.errors import Unauthorized


def _session(clock: Clock, secret: str = CLIENT_SECRET) -> TokenSession:
    return TokenSession("app-session", app_login(CLIENT_ID, secret), RetryPolicy(), clock=clock)


def test_refresh_margin_is_early_but_bounded() -> None:
    assert refresh_margin(1800) == 360
    assert refresh_margin(300) == 60
    assert refresh_margin(40) == 20  # half of a very short session, not 30 s of it


def test_login_is_lazy_and_cached() -> None:
    broker, clock = FakeBroker(), Clock()
    session = _session(clock)
    assert broker.calls == []
    first = drive(session.token(), broker)
    clock.advance(100)
    assert drive(session.token(), broker) == first
    assert broker.paths() == ["POST /v1/app/auth"]
    assert session.logins == 1


def test_a_fresh_token_needs_no_lock() -> None:
    broker, clock = FakeBroker(), Clock()
    session = _session(clock)
    drive(session.token(), broker)
    flow = session.token()
    with pytest.raises(StopIteration):
        next(flow)  # returned at once: no Exclusive step, no call


def test_a_stale_token_is_refreshed_under_the_lock() -> None:
    broker, clock = FakeBroker(app_ttl=1800), Clock()
    session = _session(clock)
    drive(session.token(), broker)
    clock.advance(1800 - 360 + 1)  # inside the refresh margin, not yet expired
    step = next(session.token())
    assert isinstance(step, Exclusive)
    assert step.key == "app-session"
    drive(session.token(), broker)
    assert session.logins == 2


def test_queued_callers_reuse_the_token_the_first_one_got() -> None:
    broker, clock = FakeBroker(), Clock()
    session = _session(clock)
    waiting = [next(session.token()) for _ in range(5)]  # five callers all found the cache empty
    results = {drive(step.flow, broker) for step in waiting if isinstance(step, Exclusive)}
    assert len(results) == 1
    assert broker.paths() == ["POST /v1/app/auth"]


def test_a_401_causes_one_relogin_and_one_resend() -> None:
    broker, clock = FakeBroker(), Clock()
    session = _session(clock)
    drive(session.token(), broker)
    answers = [problem(401, "unauthorized", "token verification failed")]

    def handler(call: Call) -> Response:
        if call.path == "/v1/thing" and answers:
            broker.calls.append(call)
            return answers.pop(0)
        if call.path == "/v1/thing":
            broker.calls.append(call)
            return Response(200, {}, b"{}")
        return broker(call)

    response = drive(session.call(lambda bearer: Call("POST", "/v1/thing", bearer=bearer)), handler)
    assert response.status == 200
    assert broker.paths() == ["POST /v1/app/auth", "POST /v1/thing", "POST /v1/app/auth", "POST /v1/thing"]
    assert broker.calls[1].bearer != broker.calls[3].bearer


def test_a_second_401_is_raised() -> None:
    broker, clock = FakeBroker(), Clock()
    session = _session(clock)

    def handler(call: Call) -> Response:
        if call.path == "/v1/thing":
            return problem(401, "unauthorized", "no")
        return broker(call)

    with pytest.raises(Unauthorized):
        drive(session.call(lambda bearer: Call("POST", "/v1/thing", bearer=bearer)), handler)
    assert session.logins == 2


def test_wrong_secret_is_unauthorized_and_the_secret_is_not_in_the_error() -> None:
    broker, clock = FakeBroker(), Clock()
    wrong = "wrong-" + "w" * 40
    with pytest.raises(Unauthorized) as info:
        drive(_session(clock, wrong).token(), broker)
    assert wrong not in str(info.value)
    assert wrong not in repr(info.value)
    assert CLIENT_SECRET not in repr(broker.calls[0])


def test_invalidate_only_forgets_the_token_it_was_given() -> None:
    broker, clock = FakeBroker(), Clock()
    session = _session(clock)
    token = drive(session.token(), broker)
    session.invalidate("some-older-token")
    assert drive(session.token(), broker) == token
    session.invalidate(token)
    assert drive(session.token(), broker) != token
    assert token not in repr(session)
