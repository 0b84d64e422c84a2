"""General HTTP rules: security headers, X-Request-ID, body limit, malformed JSON, 404/405 problems, never a 500."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._wire import HEX16, SECURITY_HEADERS, Agent, App, Wire, assert_problem, bearer, ok, unique

MIB = 1024 * 1024


def _assert_security_headers(resp: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.status_code, dict(resp.headers))
    assert resp.headers.get("x-request-id"), dict(resp.headers)


def test_security_headers_on_success_and_error(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"])
    responses = [
        wire.get("/v1/health"),
        wire.get("/v1/challenge"),
        wire.post("/v1/token/validate", json={"token": agent.token}),
        wire.post("/v1/token/validate", json={}),
        wire.get("/v1/no-such-thing"),
        wire.post("/v1/token/renew"),
        wire.get("/v1/admin/apps", headers=bearer(agent.token)),
        wire.get("/v1/metrics"),
        wire.release(agent.token),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 400, 404, 401, 403, 200, 204]
    for resp in responses:
        _assert_security_headers(resp)
    for resp in responses[:3]:
        assert resp.headers["content-type"].startswith("application/json"), resp.headers["content-type"]


def test_request_id_is_echoed(wire: Wire) -> None:
    for resp in (
        wire.get("/v1/health", headers={"X-Request-ID": "my-request-42"}),
        wire.post("/v1/token/validate", json={}, headers={"X-Request-ID": "my-request-42"}),
    ):
        assert resp.headers["x-request-id"] == "my-request-42"
    problem = wire.post("/v1/token/validate", json={}, headers={"X-Request-ID": "trace-abc"})
    assert assert_problem(problem, 400)["request_id"] == "trace-abc"


def test_request_id_is_generated_as_16_hex(wire: Wire) -> None:
    ids = set()
    for _ in range(3):
        resp = wire.get("/v1/health")
        assert HEX16.fullmatch(resp.headers["x-request-id"]), resp.headers["x-request-id"]
        ids.add(resp.headers["x-request-id"])
    assert len(ids) == 3
    problem = wire.get("/v1/nowhere")
    assert assert_problem(problem, 404)["request_id"] == problem.headers["x-request-id"]


# --- body limit -------------------------------------------------------------------------------------------------


def test_body_over_one_mib_is_413(wire: Wire) -> None:
    big = json.dumps({"token": "x" * (MIB + 10)})
    for path in ("/v1/token/validate", "/v1/register", "/v1/app/auth"):
        resp = wire.post(path, content=big, headers={"Content-Type": "application/json"})
        assert_problem(resp, 413)
        _assert_security_headers(resp)


def test_chunked_body_over_one_mib_is_413(wire: Wire) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"token": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    resp = wire.post("/v1/token/validate", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in resp.request.headers}
    assert_problem(resp, 413)


def test_body_just_under_one_mib_is_accepted(wire: Wire) -> None:
    body = json.dumps({"token": "x" * (MIB - 100)})
    assert len(body) < MIB
    resp = wire.post("/v1/token/validate", content=body, headers={"Content-Type": "application/json"})
    assert ok(resp)["valid"] is False


# --- malformed JSON ---------------------------------------------------------------------------------------------

MALFORMED = [b"{", b"not json", b'{"token": }', b"\xff\xfe\x00garbage", b'{"a":1}{"b":2}', b""]
NOT_AN_OBJECT = [b"[1, 2]", b'"a string"', b"null", b"42", b"true"]


@pytest.fixture(scope="module")
def actors(wire: Wire) -> dict[str, Any]:
    agent = wire.mint(["read:data:*"])
    app = wire.create_app(["read:data:*"])
    return {"agent": agent, "app": app, "app_token": wire.app_token(app)}


def _post_targets(wire: Wire, actors: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    agent: Agent = actors["agent"]
    app: App = actors["app"]
    return [
        ("/v1/token/validate", {}),
        ("/v1/register", {}),
        ("/v1/app/auth", {}),
        ("/v1/delegate", bearer(agent.token)),
        ("/v1/revoke", wire.admin()),
        ("/v1/admin/apps", wire.admin()),
        ("/v1/admin/launch-tokens", wire.admin()),
        ("/v1/app/launch-tokens", bearer(actors["app_token"])),
        (f"/v1/admin/apps/{app.app_id}", wire.admin()),  # PUT, see below
    ]


@pytest.mark.parametrize("raw", MALFORMED + NOT_AN_OBJECT)
def test_malformed_json_is_400_invalid_request_everywhere(wire: Wire, actors: dict[str, Any], raw: bytes) -> None:
    for path, headers in _post_targets(wire, actors):
        method = "PUT" if path.startswith("/v1/admin/apps/") else "POST"
        resp = wire.client.request(method, path, content=raw, headers={**headers, "Content-Type": "application/json"})
        assert_problem(resp, 400, "invalid_request")
    assert wire.is_valid(actors["agent"].token)


# --- 404 / 405 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", "/", "/v2/health", "/v1/admin", "/v1/token"])
def test_unknown_path_is_a_404_problem(wire: Wire, path: str) -> None:
    assert_problem(wire.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/token/validate"),
        ("GET", "/v1/register"),
        ("DELETE", "/v1/health"),
        ("PUT", "/v1/challenge"),
        ("GET", "/v1/revoke"),
        ("PATCH", "/v1/admin/apps"),
        ("POST", "/v1/audit/events"),
    ],
)
def test_wrong_method_is_a_405_problem(wire: Wire, method: str, path: str) -> None:
    resp = wire.client.request(method, path)
    assert_problem(resp, 405)
    _assert_security_headers(resp)


# --- health -----------------------------------------------------------------------------------------------------


def test_health(wire: Wire) -> None:
    body = ok(wire.get("/v1/health"))
    assert body["status"] == "ok"
    assert body["version"] == "2.0.0"
    assert isinstance(body["uptime"], int)
    assert body["uptime"] >= 0
    assert body["db_connected"] is True
    assert isinstance(body["audit_events_count"], int)


# --- never a 500 ------------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
_scopeish = st.lists(
    st.one_of(st.text(max_size=30), st.sampled_from(["read:data:x", "read:data:*", "a:b:c", "::", "a:b:c:d"])),
    max_size=3,
)
_header_token = st.text(alphabet=string.ascii_letters + string.digits + ".-_=+/ ", max_size=80).map(str.strip)

FIELDS = {
    "/v1/admin/auth": ["secret"],
    "/v1/admin/apps": ["name", "scopes", "token_ttl"],
    "/v1/app/auth": ["client_id", "client_secret"],
    "/v1/admin/launch-tokens": ["agent_name", "allowed_scope", "max_ttl", "single_use", "ttl"],
    "/v1/app/launch-tokens": ["agent_name", "allowed_scope", "max_ttl", "single_use", "ttl"],
    "/v1/register": ["launch_token", "nonce", "public_key", "signature", "orch_id", "task_id", "requested_scope"],
    "/v1/token/validate": ["token"],
    "/v1/delegate": ["delegate_to", "scope", "ttl"],
    "/v1/revoke": ["level", "target"],
}


@pytest.fixture(scope="module")
def fuzz_wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A broker without rate limits, so fuzzing the logins measures input handling, not the limiter."""
    from agentwrit_tools.broker import EmbeddedBroker

    db = tmp_path_factory.mktemp("fuzz") / "broker.db"
    with EmbeddedBroker(db_path=db, rate_limits=False) as running, httpx.Client(base_url=running.url) as client:
        w = Wire(client, running.admin_secret, running)
        agent = w.mint(["read:data:*"])
        app = w.create_app(["read:data:*"])
        auth = {
            "/v1/admin/apps": w.admin(),
            "/v1/admin/launch-tokens": w.admin(),
            "/v1/revoke": w.admin(),
            "/v1/app/launch-tokens": bearer(w.app_token(app)),
            "/v1/delegate": bearer(agent.token),
        }
        yield {"wire": w, "auth": auth, "agent": agent, "app": app}


def _body_for(fields: list[str]) -> st.SearchStrategy[Any]:
    valueish = st.one_of(_json, _scopeish, st.text(max_size=70))
    shaped = st.fixed_dictionaries({}, optional=dict.fromkeys(fields, valueish))
    return st.one_of(shaped, _json)


_fuzz_settings = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.mark.parametrize("path", sorted(FIELDS))
@_fuzz_settings
@given(data=st.data())
def test_no_input_causes_a_500(fuzz_wire: dict[str, Any], path: str, data: st.DataObject) -> None:
    w: Wire = fuzz_wire["wire"]
    body = data.draw(_body_for(FIELDS[path]))
    resp = w.post(
        path, content=json.dumps(body), headers={**fuzz_wire["auth"].get(path, {}), "Content-Type": "application/json"}
    )
    assert resp.status_code < 500, (path, body, resp.text[:300])
    if resp.status_code >= 400:
        assert_problem(resp, resp.status_code)


@_fuzz_settings
@given(token=_header_token, path=st.sampled_from(["/v1/token/renew", "/v1/token/release", "/v1/delegate"]))
def test_no_authorization_header_causes_a_500(fuzz_wire: dict[str, Any], token: str, path: str) -> None:
    w: Wire = fuzz_wire["wire"]
    resp = w.post(path, headers={"Authorization": token}, json={"delegate_to": "x", "scope": ["a:b:c"]})
    assert_problem(resp, 401, "unauthorized")
    assert w.is_valid(fuzz_wire["agent"].token)


@_fuzz_settings
@given(
    params=st.dictionaries(
        st.sampled_from(["agent_id", "task_id", "event_type", "outcome", "since", "until", "limit", "offset"]),
        st.text(max_size=30),
        max_size=4,
    )
)
def test_no_audit_query_causes_a_500(fuzz_wire: dict[str, Any], params: dict[str, str]) -> None:
    w: Wire = fuzz_wire["wire"]
    resp = w.get("/v1/audit/events", params=params, headers=w.admin())
    assert resp.status_code in {200, 400}, (params, resp.text[:300])
    if resp.status_code == 400:
        assert_problem(resp, 400)


@_fuzz_settings
@given(params=st.dictionaries(st.sampled_from(["after", "limit"]), st.text(max_size=25), max_size=2))
def test_no_revocation_feed_query_causes_a_500(fuzz_wire: dict[str, Any], params: dict[str, str]) -> None:
    resp = fuzz_wire["wire"].feed(**params)
    assert resp.status_code in {200, 400}, (params, resp.text[:300])
    if resp.status_code == 400:
        assert_problem(resp, 400)


def test_no_app_id_causes_a_500(fuzz_wire: dict[str, Any]) -> None:
    w: Wire = fuzz_wire["wire"]
    for app_id in ("%00", "..", "a" * 3000, "'; drop table apps; --", "%2F..%2F", unique("nope")):
        for method in ("GET", "PUT", "DELETE"):
            resp = w.client.request(method, f"/v1/admin/apps/{app_id}", json={"token_ttl": 600}, headers=w.admin())
            assert resp.status_code < 500, (method, app_id, resp.text[:300])
            assert_problem(resp, resp.status_code)
    assert ok(w.get(f"/v1/admin/apps/{fuzz_wire['app'].app_id}", headers=w.admin()))["app_id"]
