"""The I/O-free core: header parsing, challenges, requirements and the decision table — no sockets.

The gate is driven here exactly as the edges drive it (``begin`` then ``finish`` with a verification result), so
every row of the decision table is pinned down without a broker; the suites next to this one run the same code
against real brokers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentwrit_tools import Claims
from agentwrit_tools.errors import (
    BrokerUnavailable,
    ConfigurationError,
    ProtocolError,
    ScopeError,
    TokenInvalid,
    TokenRevoked,
)
from agentwrit_tools.resource import (
    AccessRecord,
    AccessRefused,
    Gate,
    Pending,
    Refusal,
    RequestFacts,
    Requirement,
    Verdict,
    bearer_token,
    request_id,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz"


def claims(*scope: str, sub: str = "spiffe://agentwrit.local/agent/o/t/abc") -> Claims:
    return Claims(sub=sub, exp=2_000_000_000, jti="0" * 32, scope=scope, task_id="t", orch_id="o")


def facts(token: str | None = TOKEN, **kw: Any) -> RequestFacts:
    return RequestFacts((f"Bearer {token}",) if token else (), **kw)


def run(gate: Gate, request: RequestFacts, result: Any) -> Verdict:
    step = gate.begin(request)
    if isinstance(step, Verdict):
        return step
    assert step.token == TOKEN
    return step.finish(result)


# ---- the Authorization header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((f"Bearer {TOKEN}",), TOKEN),
        ((f"bearer {TOKEN}",), TOKEN),
        ((f"BEARER   {TOKEN}  ",), TOKEN),
        (("Bearer abc+/~_-.==",), "abc+/~_-.=="),
        ((), 401),
        (("",), 401),
        (("Bearer",), 401),
        (("Bearer ",), 401),
        (("Basic dXNlcjpwdw==",), 401),
        ((TOKEN,), 401),
        (("Bearer a b",), 401),
        (("Bearer a,b",), 401),
        (('Bearer "quoted"',), 401),
        (("Bearer tök",), 401),
        (("Bearer " + "a" * 16385,), 401),
        ((f"Bearer {TOKEN}", f"Bearer {TOKEN}"), 400),
    ],
)
def test_bearer_token(values: tuple[str, ...], expected: str | int) -> None:
    got = bearer_token(values)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, Refusal)
        assert got.status == expected


def test_request_ids_are_echoed_only_when_sane() -> None:
    assert request_id("req-1.2:3") == "req-1.2:3"
    for offered in (None, "", "a b", "x" * 129, "<script>", "é"):
        generated = request_id(offered)
        assert len(generated) == 16
        assert int(generated, 16) >= 0


# ---- challenges ------------------------------------------------------------------------------------------------


def test_challenges_follow_rfc_6750() -> None:
    gate = Gate("read:records:{patient_id}", access_log=None)
    missing = run(gate, facts(None), None).refusal
    assert missing is not None
    assert missing.challenge() == "Bearer"
    assert missing.challenge('api "x"') == 'Bearer realm="api \\"x\\""'
    invalid = run(gate, facts(path_params={"patient_id": "1"}), TokenInvalid(reason="expired")).refusal
    assert invalid is not None
    assert invalid.challenge() == 'Bearer error="invalid_token", error_description="token verification failed"'
    lacking = run(gate, facts(path_params={"patient_id": "2"}), claims("read:records:1")).refusal
    assert lacking is not None
    assert lacking.challenge("r") == (
        'Bearer realm="r", error="insufficient_scope", '
        'error_description="this endpoint requires the scope read:records:2", scope="read:records:2"'
    )
    bad = run(gate, facts(path_params={"patient_id": "*"}), claims("read:records:*")).refusal
    assert bad is not None
    assert bad.challenge() is None  # a bad parameter is not about credentials
    down = run(gate, facts(path_params={"patient_id": "1"}), BrokerUnavailable("down")).refusal
    assert down is not None
    assert down.challenge() is None


# ---- requirements ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scopes", [[], ()])
def test_an_operation_without_scopes_is_a_configuration_error(scopes: Any) -> None:
    with pytest.raises(ConfigurationError):
        Requirement(scopes)


def test_bad_templates_and_sources_fail_at_declaration() -> None:
    for template in ("read:records", "read:records:{x", "read:records:{x}{y}:z", "read:records:*{x}"):
        with pytest.raises(ScopeError):
            Requirement(template)
    with pytest.raises(ConfigurationError):
        Requirement("read:records:{x}", sources=("body",))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Requirement("read:records:{x}", sources=())


def test_values_come_from_the_allowed_sources_only() -> None:
    path_only = Requirement("read:records:{x}", sources=("path",))
    assert path_only.render(facts(path_params={"x": "1"}, query=(("x", "2"),))) == ("read:records:1",)
    missing = path_only.render(facts(query=(("x", "2"),)))
    assert isinstance(missing, Refusal)
    assert missing.status == 400
    both = Requirement("read:records:{x}")
    ambiguous = both.render(facts(path_params={"x": "1"}, query=(("x", "1"),)))
    assert isinstance(ambiguous, Refusal)
    assert "both" in ambiguous.detail


def test_repeated_query_values_are_all_required_and_bounded() -> None:
    requirement = Requirement(["read:records:{x}", "read:audit:{y}"])
    rendered = requirement.render(facts(query=(("x", "1"), ("x", "2"), ("y", "a"))))
    assert rendered == ("read:records:1", "read:records:2", "read:audit:a")
    flood = requirement.render(facts(query=(*(("x", str(i)) for i in range(101)), ("y", "a"))))
    assert isinstance(flood, Refusal)
    assert flood.status == 400


@pytest.mark.parametrize(
    "value", ["*", "a:b", "", " 1", "1/2", "..", "%2A", "é", "x" * 129, "a\nb", "\uff41"]
)  # the last: fullwidth a
def test_unsafe_values_are_refused_and_never_echoed(value: str) -> None:
    refusal = Requirement("read:records:{patient_id}").render(facts(path_params={"patient_id": value}))
    assert isinstance(refusal, Refusal)
    assert refusal.status == 400
    assert refusal.error_code == "invalid_request"
    if len(value) > 2:
        assert value not in refusal.detail


# ---- the decision table ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "status", "code", "outcome"),
    [
        (TokenInvalid(reason="expired"), 401, "unauthorized", "unauthorized"),
        (TokenInvalid(reason="signature or claims"), 401, "unauthorized", "unauthorized"),
        (TokenRevoked(level="task"), 403, "insufficient_scope", "revoked"),
        (BrokerUnavailable("refused"), 503, "verification_unavailable", "unavailable"),
        (ProtocolError("not json"), 503, "verification_unavailable", "unavailable"),
        (claims("read:records:2"), 403, "insufficient_scope", "insufficient_scope"),
        (claims("write:records:1"), 403, "insufficient_scope", "insufficient_scope"),
        (claims("read:records:1"), 200, "", "allowed"),
        (claims("read:records:*"), 200, "", "allowed"),
        (claims("not a scope", "read:records:1"), 200, "", "allowed"),
        (claims("not a scope"), 403, "insufficient_scope", "insufficient_scope"),
        (claims(), 403, "insufficient_scope", "insufficient_scope"),
    ],
)
def test_decision_table(result: Any, status: int, code: str, outcome: str) -> None:
    records: list[AccessRecord] = []
    gate = Gate("read:records:{patient_id}", access_log=records.append, clock=lambda: 42.0)
    verdict = run(gate, facts(path_params={"patient_id": "1"}, method="GET", path="/r/1", route="/r/{id}"), result)
    assert verdict.record is records[0]
    assert records[0].time == 42.0
    assert records[0].outcome == outcome
    assert records[0].status == status
    assert records[0].required == ("read:records:1",)
    if status == 200:
        assert verdict.allowed
        assert verdict.claims is result
        return
    assert verdict.refusal is not None
    assert (verdict.refusal.status, verdict.refusal.error_code) == (status, code)
    verified = isinstance(result, Claims)
    assert (verdict.claims is not None) == verified
    assert (records[0].agent_id is not None) == verified
    exc = AccessRefused(verdict)
    assert exc.problem()["instance"] == "/r/1"
    assert str(exc) == f"{status} {code}: {verdict.refusal.detail}"


def test_the_token_stays_out_of_reprs_and_records() -> None:
    gate = Gate("read:records:{patient_id}", access_log=None)
    step = gate.begin(facts(path_params={"patient_id": "1"}))
    assert isinstance(step, Pending)
    assert TOKEN not in repr(step)
    verdict = step.finish(claims("read:records:1"))
    assert TOKEN not in repr(verdict) + str(verdict.record.to_dict())


def test_an_allowed_verdict_cannot_become_an_exception() -> None:
    gate = Gate("read:records:1", access_log=None)
    verdict = run(gate, facts(), claims("read:records:1"))
    with pytest.raises(ValueError, match="refused"):
        AccessRefused(verdict)


def test_hooks_must_be_callable() -> None:
    with pytest.raises(TypeError):
        Gate("read:records:1", access_log=["not callable"])  # type: ignore[list-item]


# ---- packaging -------------------------------------------------------------------------------------------------


def test_the_core_and_the_asgi_middleware_import_no_web_framework() -> None:
    code = (
        "import sys, agentwrit_tools.resource, agentwrit_tools.resource.asgi\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(out.stdout.split())
    assert loaded.isdisjoint({"fastapi", "starlette", "flask", "werkzeug", "uvicorn"}), loaded


def test_every_exported_name_exists() -> None:
    import agentwrit_tools.resource as resource
    import agentwrit_tools.resource.asgi as asgi
    import agentwrit_tools.resource.fastapi as fastapi_integration
    import agentwrit_tools.resource.flask as flask_integration

    for module in (resource, asgi, fastapi_integration, flask_integration):
        assert module.__all__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
