"""Credential flows against the socket-free fake: mint, gate on verified claims, renew, release, delegate."""

from __future__ import annotations

import base64
import json
import time

import pytest
from client_fakes import ADMIN_SECRET, CLIENT_ID, CLIENT_SECRET, Clock, FakeBroker, drive, ok

from agentwrit_tools.client import _admin, _flows
from agentwrit_tools.client._config import Settings
from agentwrit_tools.client._flows import Core
from agentwrit_tools.client._launch import TaskLaunch
from agentwrit_tools.client._steps import Call, Response
from agentwrit_tools.errors import (
    ConfigurationError,
    NotFound,
    ProtocolError,
    ScopeError,
    ScopeMismatch,
    ScopeViolation,
    TaskBudgetExhausted,
)
from agentwrit_tools.pop import thumbprint


def _core(**options: object) -> Core:
    settings = Settings("http://broker.test", CLIENT_ID, CLIENT_SECRET, ADMIN_SECRET, **options)  # type: ignore[arg-type]
    return settings.build_core()


def _mint(core: Core, broker: FakeBroker, scope: object = "read:data:x", **kw: object) -> _flows.Minted:
    args = {"orch_id": "orch", "task_id": "task", **kw}
    return drive(_flows.mint(core, scope, **args), broker)  # type: ignore[arg-type]


def test_mint_runs_the_contract_sequence_and_returns_verified_claims() -> None:
    broker, core = FakeBroker(), _core()
    minted = _mint(core, broker, ["read:data:x", "write:data:x"], ttl=60)
    assert broker.paths() == [
        "POST /v1/app/auth",
        "POST /v1/app/launch-tokens",
        "GET /v1/challenge",
        "POST /v1/register",
        "GET /.well-known/jwks.json",
    ]
    launch = broker.calls[1].body
    assert launch == {
        "agent_name": "task",
        "allowed_scope": ["read:data:x", "write:data:x"],
        "single_use": True,
        "ttl": 30,
        "max_ttl": 60,
        "task_id": "task",  # bound to its task by a broker with the extension (revoked with the task)
    }
    register = broker.calls[3].body
    assert set(register) == {
        "launch_token",
        "nonce",
        "public_key",
        "signature",
        "orch_id",
        "task_id",
        "requested_scope",
    }
    assert minted.claims.scope == ("read:data:x", "write:data:x")
    assert minted.claims.sub == minted.agent_id
    assert (minted.claims.orch_id, minted.claims.task_id) == ("orch", "task")
    assert minted.access_token not in repr(minted)


def test_each_mint_uses_a_fresh_key_and_the_session_once() -> None:
    broker, core = FakeBroker(), _core()
    for _ in range(3):
        _mint(core, broker)
    keys = {c.body["public_key"] for c in broker.calls if c.path == "/v1/register"}
    assert len(keys) == 3
    assert broker.paths().count("POST /v1/app/auth") == 1


def test_scopes_are_validated_and_deduplicated_before_anything_is_sent() -> None:
    broker, core = FakeBroker(), _core()
    for bad in ("read:data", "read:*:x", [], ["ok:ok:ok", "bad"]):
        with pytest.raises(ScopeError):
            _mint(core, broker, bad)
    assert broker.calls == []
    assert _mint(core, broker, ["a:b:c", "a:b:c"]).claims.scope == ("a:b:c",)


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True])
def test_bad_ttl_is_refused(ttl: object) -> None:
    with pytest.raises(ConfigurationError):
        _mint(_core(), FakeBroker(), ttl=ttl)


def test_a_wider_grant_than_requested_is_released_and_raised() -> None:
    broker, core = FakeBroker(), _core()
    broker.grant_scope = ["read:data:*"]
    with pytest.raises(ScopeMismatch) as info:
        _mint(core, broker, "read:data:x")
    assert info.value.requested == ("read:data:x",)
    assert info.value.granted == ("read:data:*",)
    assert broker.paths()[-1] == "POST /v1/token/release"
    assert len(broker.revoked) == 1


def test_a_token_for_another_task_is_released_and_raised() -> None:
    broker, core = FakeBroker(), _core()
    original = broker._post_v1_register

    def other_task(call: Call) -> Response:
        return original(Call(call.method, call.path, body={**call.body, "task_id": "someone-else"}))

    broker.override("POST", "/v1/register", other_task)
    with pytest.raises(ProtocolError, match="task_id"):
        _mint(core, broker)
    assert broker.paths()[-1] == "POST /v1/token/release"


def test_a_token_outliving_the_requested_ttl_is_released_and_raised() -> None:
    broker, core = FakeBroker(), _core()
    original = broker._post_v1_app_launch_tokens

    def longer(call: Call) -> Response:
        return original(Call(call.method, call.path, body={**call.body, "max_ttl": 3600}, bearer=call.bearer))

    broker.override("POST", "/v1/app/launch-tokens", longer)
    with pytest.raises(ProtocolError, match="ttl"):
        _mint(core, broker, ttl=60)
    assert broker.paths()[-1] == "POST /v1/token/release"


def test_mint_without_app_credentials_is_a_configuration_error() -> None:
    core = Settings("http://broker.test").build_core()
    with pytest.raises(ConfigurationError):
        _mint(core, FakeBroker())


def test_mint_with_a_given_launch_token_skips_the_app_session() -> None:
    broker, core = FakeBroker(), _core()
    token = drive(_admin.create_launch_token(core, "agent", "read:data:*"), _admin_route(broker))
    broker.calls.clear()
    minted = _mint(core, broker, "read:data:7", launch_token=token.launch_token)
    assert minted.claims.scope == ("read:data:7",)
    assert "POST /v1/app/auth" not in broker.paths()


def _admin_route(broker: FakeBroker):  # type: ignore[no-untyped-def]
    def handler(call: Call) -> Response:
        if call.path == "/v1/admin/launch-tokens":
            return broker._post_v1_app_launch_tokens(Call(call.method, call.path, body=call.body, bearer=call.bearer))
        return broker(call)

    return handler


def test_release_is_true_once_then_false() -> None:
    broker, core = FakeBroker(), _core()
    minted = _mint(core, broker)
    assert drive(_flows.release(core, minted.access_token), broker) is True
    assert drive(_flows.release(core, minted.access_token), broker) is False


def test_renew_returns_a_new_token_with_the_same_subject_and_scope() -> None:
    broker, core = FakeBroker(), _core()
    minted = _mint(core, broker)
    renewed = drive(_flows.renew(core, minted.access_token, minted.claims), broker)
    assert renewed.claims.jti != minted.claims.jti
    assert (renewed.claims.sub, renewed.claims.scope) == (minted.claims.sub, minted.claims.scope)


def test_delegate_narrows_and_is_gated() -> None:
    broker, core = FakeBroker(), _core()
    parent = _mint(core, broker, "read:data:*")
    child = _mint(core, broker, "read:data:1")
    delegated = drive(
        _flows.delegate(core, parent.access_token, to=child.agent_id, scope="read:data:1", ttl=30), broker
    )
    assert delegated.agent_id == child.agent_id
    assert delegated.claims.scope == ("read:data:1",)
    assert delegated.claims.chain_root == parent.agent_id
    assert broker.calls[-1].body == {"delegate_to": child.agent_id, "scope": ["read:data:1"], "ttl": 30}
    with pytest.raises(ScopeViolation):
        drive(_flows.delegate(core, child.access_token, to=parent.agent_id, scope="read:data:*", ttl=None), broker)
    with pytest.raises(NotFound):
        drive(_flows.delegate(core, parent.access_token, to="spiffe://nobody", scope="read:data:1", ttl=None), broker)


def test_task_launch_reuses_one_multi_use_launch_token_per_ttl() -> None:
    broker, core, clock = FakeBroker(), _core(), Clock()
    task = TaskLaunch(["read:data:*", "write:data:1"], orch_id="o", task_id="t", budget=600, max_ttl=60, clock=clock)
    for i in range(3):
        drive(task.mint(core, f"read:data:{i}"), broker)
    drive(task.mint(core, "write:data:1", ttl=10), broker)
    launches = [c.body for c in broker.calls if c.path == "/v1/app/launch-tokens"]
    # Each asks to be bound to the task; this broker does not bind (no policy.task_id in its answer), so each lives
    # the short unrevocable lifetime instead of the task's whole budget.
    assert launches == [
        {
            "agent_name": "t",
            "allowed_scope": ["read:data:*", "write:data:1"],
            "single_use": False,
            "ttl": 30,
            "max_ttl": 60,
            "task_id": "t",
        },
        {
            "agent_name": "t",
            "allowed_scope": ["read:data:*", "write:data:1"],
            "single_use": False,
            "ttl": 30,
            "max_ttl": 10,
            "task_id": "t",
        },
    ]


def test_task_launch_lets_the_broker_refuse_scopes_outside_the_ceiling() -> None:
    broker, core = FakeBroker(), _core()
    task = TaskLaunch("read:data:*", orch_id="o", task_id="t", budget=600)
    with pytest.raises(ScopeViolation):
        drive(task.mint(core, "write:data:1"), broker)
    assert broker.paths()[-1] == "POST /v1/register"


def test_task_launch_clamps_ttl_to_the_budget_and_stops_when_spent() -> None:
    broker, core, clock = FakeBroker(), _core(), Clock()
    task = TaskLaunch("read:data:*", orch_id="o", task_id="t", budget=100, max_ttl=60, clock=clock)
    clock.advance(70)
    drive(task.mint(core, "read:data:1"), broker)
    assert broker.calls[1].body["max_ttl"] == 30
    assert broker.calls[1].body["ttl"] == 30
    clock.advance(30)
    with pytest.raises(TaskBudgetExhausted):
        drive(task.mint(core, "read:data:1"), broker)


def test_task_launch_gets_a_new_launch_token_once_when_the_old_one_is_refused() -> None:
    broker, core = FakeBroker(), _core()
    task = TaskLaunch("read:data:*", orch_id="o", task_id="t", budget=600)
    drive(task.mint(core, "read:data:1"), broker)
    broker.launch.clear()  # the broker forgot (revoked) the launch token
    drive(task.mint(core, "read:data:2"), broker)
    assert broker.paths().count("POST /v1/app/launch-tokens") == 2


def test_operator_flows_send_the_contract_bodies() -> None:
    broker, core = FakeBroker(), _core()
    seen: list[Call] = []

    def handler(call: Call) -> Response:
        seen.append(call)
        if call.path == "/v1/admin/auth":
            return broker(call)
        if call.path == "/v1/revoke":
            return ok({"revoked": True, **call.body, "count": 1})
        if call.path == "/v1/audit/events":
            return ok({"events": [], "total": 0, "offset": 0, "limit": 5})
        return ok(
            {"app_id": "a/b", "client_id": "c", "client_secret": "shh" * 20, "scopes": ["a:b:c"], "token_ttl": 60}
        )

    result = drive(_admin.revoke(core, "chain", "spiffe://x"), handler)
    assert result.count == 1
    assert seen[-1].body == {"level": "chain", "target": "spiffe://x"}
    drive(_admin.audit_page(core, _admin.audit_filters(task_id="t", outcome="denied"), limit=5), handler)
    assert seen[-1].params == {"task_id": "t", "outcome": "denied", "limit": 5, "offset": 0}
    app = drive(_admin.get_app(core, "a/b"), handler)
    assert seen[-1].path == "/v1/admin/apps/a%2Fb"
    assert "shh" not in repr(app)
    assert [c.path for c in seen].count("/v1/admin/auth") == 1
    with pytest.raises(ConfigurationError):
        drive(_admin.revoke(core, "everything", "x"), handler)  # type: ignore[arg-type]


def test_operator_calls_without_the_admin_secret_are_a_configuration_error() -> None:
    core = Settings("http://broker.test", CLIENT_ID, CLIENT_SECRET).build_core()
    with pytest.raises(ConfigurationError):
        drive(_admin.list_apps(core), FakeBroker())


def test_the_ttl_check_uses_the_brokers_clock() -> None:
    broker, core = FakeBroker(), _core()
    original = broker.issue

    def ahead(**claims: object) -> str:  # the broker's clock runs 1.8 s ahead of ours (within the leeway)
        now = int(time.time()) + 2
        if "exp" in claims:
            claims["exp"] = int(claims["exp"]) + 2  # type: ignore[call-overload]
        return original(**{"iat": now, "nbf": now, **claims})

    broker.issue = ahead  # type: ignore[method-assign]
    assert _mint(core, broker, ttl=60).claims.exp - int(time.time()) >= 61


def _binding(broker: FakeBroker, jkt: str | None) -> None:
    """Make the fake broker put ``cnf: {"jkt": jkt}`` (None: its own agent key's) into registered tokens."""
    original = broker._post_v1_register

    def bound(call: Call) -> Response:
        answer = json.loads(original(call).content)
        claims = broker.claims_of(answer["access_token"])
        own = key_thumbprint_of(call.body["public_key"])
        fresh = {k: v for k, v in claims.items() if k not in ("iat", "nbf", "jti")}
        answer["access_token"] = broker.issue(**fresh, cnf={"jkt": jkt or own})
        return ok(answer)

    broker.override("POST", "/v1/register", bound)


def key_thumbprint_of(public_key_b64: str) -> str:
    return thumbprint(base64.b64decode(public_key_b64))


def test_key_binding_is_asked_for_only_when_configured() -> None:
    broker = FakeBroker()
    _mint(_core(), broker)
    assert "key_bound" not in broker.calls[3].body
    _mint(_core(proof_of_possession=True), broker)
    registers = [c for c in broker.calls if c.path == "/v1/register"]
    assert len(registers) == 2
    assert registers[1].body["key_bound"] is True


def test_a_token_bound_to_the_agents_own_key_keeps_the_key() -> None:
    broker, core = FakeBroker(), _core(proof_of_possession=True)
    _binding(broker, None)
    minted = _mint(core, broker)
    assert minted.key is not None
    assert minted.claims.jkt == thumbprint(minted.key.public_key().public_bytes_raw())


def test_a_token_bound_to_a_key_the_client_does_not_hold_is_released_and_raised() -> None:
    broker, core = FakeBroker(), _core(proof_of_possession=True)
    _binding(broker, thumbprint(bytes(range(32))))
    with pytest.raises(ProtocolError, match="bound to a key this client does not hold"):
        _mint(core, broker)
    assert broker.paths()[-1] == "POST /v1/token/release"
    assert len(broker.revoked) == 1
