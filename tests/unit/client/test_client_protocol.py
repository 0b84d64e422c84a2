"""The I/O-free protocol core: error mapping, body parsing and the retry rules."""

from __future__ import annotations

import json

import pytest
from client_fakes import drive, ok, problem

from agentwrit_tools.client._models import Challenge
from agentwrit_tools.client._protocol import RetryPolicy, error_for, parse, parse_retry_after, send
from agentwrit_tools.client._steps import Call, Response
from agentwrit_tools.errors import (
    BrokerError,
    BrokerUnavailable,
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    NotFound,
    ProblemError,
    ProtocolError,
    RateLimited,
    ScopeViolation,
    ServerError,
    Unauthorized,
)

CALL = Call("POST", "/v1/register", body={"launch_token": "x"})
JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


@pytest.mark.parametrize(
    ("status", "code", "path", "kind"),
    [
        (400, "invalid_request", "/v1/register", InvalidRequest),
        (400, "invalid_ttl", "/v1/admin/apps", InvalidRequest),
        (401, "unauthorized", "/v1/register", Unauthorized),
        (403, "scope_violation", "/v1/register", ScopeViolation),
        (403, "scope_violation", "/v1/delegate", ScopeViolation),
        (403, "forbidden", "/v1/app/launch-tokens", ScopeViolation),
        (403, "insufficient_scope", "/v1/token/release", InsufficientScope),
        (403, "forbidden", "/v1/admin/apps", Forbidden),
        (404, "not_found", "/v1/delegate", NotFound),
        (409, "conflict", "/v1/admin/apps", ProblemError),
        (413, "payload_too_large", "/v1/register", ProblemError),
        (500, "internal_error", "/v1/register", ServerError),
        (503, "unavailable", "/v1/register", ServerError),
    ],
)
def test_statuses_and_codes_map_to_typed_errors(status: int, code: str, path: str, kind: type[ProblemError]) -> None:
    error = error_for(Call("POST", path), problem(status, code, "because"))
    assert type(error) is kind
    assert error.status_code == status
    assert error.error_code == code
    assert error.method == "POST"
    assert error.path == path


def test_problem_keeps_every_contract_field() -> None:
    body = {
        "type": "urn:agentwrit:error:scope_violation",
        "title": "Forbidden",
        "status": 403,
        "detail": "requested scope exceeds the launch token",
        "instance": "/v1/register",
        "error_code": "scope_violation",
        "request_id": "aaaabbbbccccdddd",
        "hint": "ask for less",
    }
    error = error_for(CALL, Response(403, {}, json.dumps(body).encode()))
    assert isinstance(error, ProblemError)
    assert error.problem.model_dump() == body
    assert error.request_id == "aaaabbbbccccdddd"
    assert "scope_violation" in str(error)
    assert "aaaabbbbccccdddd" in str(error)


def test_request_id_falls_back_to_the_header() -> None:
    body = {"status": 400, "error_code": "invalid_request", "detail": "x"}
    error = error_for(CALL, Response(400, {"x-request-id": "feedfacefeedface"}, json.dumps(body).encode()))
    assert isinstance(error, ProblemError)
    assert error.request_id == "feedfacefeedface"


@pytest.mark.parametrize("body", [b"<html>Bad Gateway</html>", b"", b"[1,2]", b'{"status": "not-an-int"}'])
def test_a_non_problem_error_body_still_gives_the_status_class(body: bytes) -> None:
    error = error_for(CALL, Response(502, {"content-type": "text/html"}, body))
    assert type(error) is ServerError
    assert error.problem.status == 502
    assert error.problem.error_code is None
    assert error.problem.title
    assert error.problem.instance == "/v1/register"


def test_rate_limited_carries_retry_after() -> None:
    error = error_for(CALL, problem(429, "rate_limited", "slow down", **{"retry-after": "7"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_retry_after_forms() -> None:
    assert parse_retry_after(Response(429, {"retry-after": "2.5"})) == 2.5
    assert parse_retry_after(Response(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}), now=1445412475) == 5
    assert parse_retry_after(Response(429, {"retry-after": "soon"})) is None
    assert parse_retry_after(Response(429, {})) is None
    assert parse_retry_after(Response(429, {"retry-after": "-3"})) == 0


def test_a_redirect_is_a_protocol_error() -> None:
    assert type(error_for(CALL, Response(302, {"location": "/elsewhere"}))) is ProtocolError


def test_details_that_quote_tokens_are_redacted() -> None:
    secret = "a" * 64
    error = error_for(CALL, problem(401, "unauthorized", f"bad token {JWT} and launch token {secret}"))
    assert isinstance(error, ProblemError)
    for text in (str(error), repr(error), error.problem.detail):
        assert JWT not in text
        assert secret not in text
        assert "[redacted]" in text


def test_parse_refuses_non_json_and_names_fields_not_values() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        parse(Challenge, CALL, Response(200, {"content-type": "text/html"}, b"<html>"))
    with pytest.raises(ProtocolError, match="nonce") as info:
        parse(Challenge, CALL, ok({"nonce": "not hex " + JWT}))
    assert JWT not in str(info.value)
    assert info.value.__cause__ is None


def _failing(times: int, *, sent: bool, then: Response) -> tuple[list[Call], object]:
    seen: list[Call] = []

    def handler(call: Call) -> Response:
        seen.append(call)
        if len(seen) <= times:
            raise BrokerUnavailable("down", method=call.method, path=call.path, sent=sent)
        return then

    return seen, handler


def test_idempotent_calls_are_resent_after_transport_failures_with_backoff() -> None:
    seen, handler = _failing(2, sent=True, then=ok({}))
    sleeps: list[float] = []
    call = Call("GET", "/v1/challenge", idempotent=True)
    response = drive(send(call, RetryPolicy(transport_retries=2, backoff=0.1)), handler, sleeps=sleeps)  # type: ignore[arg-type]
    assert response.status == 200
    assert len(seen) == 3
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2


def test_retries_are_bounded() -> None:
    seen, handler = _failing(10, sent=True, then=ok({}))
    with pytest.raises(BrokerUnavailable):
        drive(send(Call("GET", "/v1/health", idempotent=True), RetryPolicy(transport_retries=2)), handler)  # type: ignore[arg-type]
    assert len(seen) == 3


def test_a_sent_non_idempotent_call_is_never_resent() -> None:
    seen, handler = _failing(1, sent=True, then=ok({}))
    with pytest.raises(BrokerUnavailable):
        drive(send(CALL, RetryPolicy()), handler)  # type: ignore[arg-type]
    assert len(seen) == 1


def test_an_unsent_call_may_be_resent_whatever_it_is() -> None:
    seen, handler = _failing(1, sent=False, then=ok({}))
    assert drive(send(CALL, RetryPolicy()), handler).status == 200  # type: ignore[arg-type]
    assert len(seen) == 2


def test_429_with_a_short_retry_after_is_waited_out() -> None:
    answers = [problem(429, "rate_limited", "slow", **{"retry-after": "1"}), ok({"fine": True})]
    sleeps: list[float] = []
    response = drive(send(CALL, RetryPolicy()), lambda call: answers.pop(0), sleeps=sleeps)
    assert response.status == 200
    assert sleeps == [1.0]


def test_429_with_a_long_retry_after_raises_at_once() -> None:
    sleeps: list[float] = []
    answer = problem(429, "rate_limited", "slow", **{"retry-after": "60"})
    with pytest.raises(RateLimited) as info:
        drive(send(CALL, RetryPolicy(max_retry_after=5)), lambda call: answer, sleeps=sleeps)
    assert info.value.retry_after == 60
    assert sleeps == []


def test_429_retries_are_bounded() -> None:
    answer = problem(429, "rate_limited", "slow", **{"retry-after": "0"})
    seen: list[Call] = []

    def handler(call: Call) -> Response:
        seen.append(call)
        return answer

    with pytest.raises(RateLimited):
        drive(send(CALL, RetryPolicy(rate_limit_retries=2)), handler)
    assert len(seen) == 3


def test_5xx_is_not_retried() -> None:
    seen: list[Call] = []

    def handler(call: Call) -> Response:
        seen.append(call)
        return problem(500, "internal_error", "boom")

    with pytest.raises(ServerError):
        drive(send(Call("GET", "/v1/health", idempotent=True), RetryPolicy()), handler)
    assert len(seen) == 1


def test_accepted_statuses_are_returned_not_raised() -> None:
    response = drive(
        send(Call("GET", "/.well-known/jwks.json"), RetryPolicy(), accept=(404,)), lambda c: problem(404, "x")
    )
    assert response.status == 404


def test_every_broker_error_is_an_agentwrit_error() -> None:
    assert issubclass(BrokerUnavailable, BrokerError)
    assert issubclass(ProtocolError, BrokerError)
    assert issubclass(ProblemError, BrokerError)


def test_secrets_we_sent_are_redacted_from_an_echo_whatever_their_alphabet() -> None:
    secret = "ab/cd+ef/gh=ij/klmnop"  # short runs between '/' would escape the pattern alone
    call = Call("POST", "/v1/app/auth", body={"client_id": "my-app-client", "client_secret": secret})
    error = error_for(call, problem(401, "unauthorized", f"client my-app-client with secret {secret} refused"))
    assert secret not in str(error)
    assert secret not in error.problem.model_dump_json()
    assert "my-app-client" in str(error)


def test_launch_tokens_presented_for_revocation_are_redacted_from_an_echo() -> None:
    tokens = ["a1" * 32, "b2" * 32]
    call = Call("POST", "/v1/launch-tokens/revoke", body={"launch_tokens": tokens}, bearer="app-bearer-token")
    error = error_for(call, problem(400, "invalid_request", f"unknown: {tokens[0]}, {tokens[1]}"))
    assert all(token not in str(error) for token in tokens)
    assert all(token not in error.problem.model_dump_json() for token in tokens)


def test_spiffe_ids_in_details_stay_readable() -> None:
    agent = "spiffe://agentwrit.local/agent/orch-a/task-a/0123456789abcdef"
    error = error_for(Call("POST", "/v1/delegate"), problem(404, "not_found", f"delegate {agent} is not registered"))
    assert agent in str(error)
