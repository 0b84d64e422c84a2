"""Claims that depend on configuration: trust domain in the SPIFFE ID, `iss`, and `aud` (omitted when unset)."""

from __future__ import annotations

from ._wire import SPIFFE_AGENT, Wire, claims_of, jwt_parts, ok
from .conftest import StartBroker


def test_default_issuer_is_empty_and_audience_is_omitted(wire: Wire) -> None:
    agent = wire.mint(["read:data:x"])
    for token in (agent.token, wire.admin_token()):
        claims = claims_of(token)
        assert claims["iss"] == ""
        assert "aud" not in claims
    match = SPIFFE_AGENT.fullmatch(agent.agent_id)
    assert match
    assert match["td"] == "agentwrit.local"


def test_configured_trust_domain_issuer_and_audience(start_broker: StartBroker) -> None:
    from agentwrit_tools.broker import BrokerSettings

    settings = BrokerSettings(trust_domain="example.org", issuer="https://broker.example", audience="svc-a,svc-b")
    with start_broker(settings=settings) as w:
        a = w.mint(["read:data:*"], orch_id="orch-x")
        b = w.mint(["read:other:z"])
        assert a.agent_id.startswith("spiffe://example.org/agent/orch-x/")
        claims = a.claims
        assert claims["iss"] == "https://broker.example"
        assert claims["aud"] == ["svc-a", "svc-b"]
        assert w.validate(a.token)["claims"]["aud"] == ["svc-a", "svc-b"]

        delegated = claims_of(ok(w.delegate(a.token, b.agent_id, ["read:data:x"]))["access_token"])
        assert delegated["aud"] == claims["aud"]
        assert delegated["iss"] == "https://broker.example"
        assert delegated["delegation_chain"][0]["agent"] == a.agent_id

        header, admin_claims = jwt_parts(w.admin_token())
        assert header["alg"] == "EdDSA"
        assert admin_claims["iss"] == "https://broker.example"
