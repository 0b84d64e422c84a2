"""Properties of the core over arbitrary input: mapping and parsing are total, verification refuses cleanly."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from client_fakes import Clock, FakeBroker, drive
from hypothesis import given, settings
from hypothesis import strategies as st

from agentwrit_tools.client._models import Registration, RevocationPage, Validation
from agentwrit_tools.client._protocol import RetryPolicy, error_for, parse
from agentwrit_tools.client._steps import Call, Response
from agentwrit_tools.client._verify import VerifierCore
from agentwrit_tools.errors import BrokerError, ProtocolError, TokenInvalid

CALL = Call("POST", "/v1/register")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@given(status=st.integers(300, 599), body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_error_answer_maps_to_a_broker_error(status: int, body: bytes) -> None:
    error = error_for(CALL, Response(status, {"content-type": "application/json"}, body))
    assert isinstance(error, BrokerError)
    assert str(error)
    assert repr(error)


@given(data=json_values, model=st.sampled_from([Registration, Validation, RevocationPage]))
def test_parsing_any_body_either_succeeds_or_is_a_protocol_error(data: Any, model: type) -> None:
    with contextlib.suppress(ProtocolError):
        parse(model, CALL, Response(200, {}, json.dumps(data).encode()))


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(st.characters(), max_size=300)
    | st.from_regex(r"[A-Za-z0-9_-]{1,40}\.[A-Za-z0-9_-]{1,80}\.[A-Za-z0-9_-]{0,90}")
)
def test_verifying_garbage_only_ever_raises_token_invalid(token: str) -> None:
    broker, clock = FakeBroker(), Clock()
    core = VerifierCore(RetryPolicy(), clock=clock)
    try:
        drive(core.verify(token), broker)
    except TokenInvalid:
        return
    raise AssertionError("garbage verified")


@settings(max_examples=100, deadline=None)
@given(token=st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=50))
def test_remote_verification_of_any_text_only_ever_raises_token_invalid(token: str) -> None:
    broker, clock = FakeBroker(jwks=False, feed=False), Clock()
    core = VerifierCore(RetryPolicy(), clock=clock, strict=True)
    try:
        drive(core.verify(token), broker)
    except TokenInvalid:
        return
    raise AssertionError("garbage verified")
