"""Our extensions: JWKS, the revocation feed, cascade revocation, exp capping — and all of them off with
``extensions=False``, where the broker must behave like the reference one.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._wire import RFC3339, Wire, assert_problem, b64url_decode, claims_of, jwt_parts, ok, thumbprint_candidates
from .conftest import StartBroker

# --- JWKS -------------------------------------------------------------------------------------------------------


def _jwks(wire: Wire) -> dict[str, Any]:
    body = ok(wire.get("/.well-known/jwks.json"))
    assert list(body) == ["keys"] or set(body) == {"keys"}, body
    assert len(body["keys"]) >= 1
    return dict(body)


def test_jwks_publishes_the_signing_key(wire: Wire) -> None:
    keys = _jwks(wire)["keys"]
    for key in keys:
        assert key["kty"] == "OKP"
        assert key["crv"] == "Ed25519"
        assert key["alg"] == "EdDSA"
        assert key["use"] == "sig"
        assert len(b64url_decode(key["x"])) == 32
        assert "d" not in key  # never the private part
        assert key["kid"] in thumbprint_candidates(key)


def test_jwks_verifies_every_kind_of_token_locally(wire: Wire) -> None:
    keys = {k["kid"]: jwt.PyJWK(k) for k in _jwks(wire)["keys"]}
    app = wire.create_app(["read:data:*"])
    agent = wire.mint(["read:data:x"])
    for token in (wire.admin_token(), wire.app_token(app), agent.token):
        header, _ = jwt_parts(token)
        assert header["alg"] == "EdDSA"
        assert header["kid"] in keys
        claims = jwt.decode(token, keys[header["kid"]], algorithms=["EdDSA"], options={"verify_aud": False})
        assert claims == claims_of(token)

    # A changed payload does not verify.
    head, _, sig = agent.token.split(".")
    tampered_payload = jwt.utils.base64url_encode(b'{"sub":"admin","scope":["admin:revoke:*"]}').decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{tampered_payload}.{sig}", keys[jwt_parts(agent.token)[0]["kid"]], algorithms=["EdDSA"])


def test_delegation_record_signatures_verify_with_the_published_key(wire: Wire) -> None:
    key = _jwks(wire)["keys"][0]
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(key["x"]))
    a = wire.mint(["read:data:*", "write:data:x"])
    b, c = wire.mint(["read:other:z"]), wire.mint(["read:other:z"])
    to_b = ok(wire.delegate(a.token, b.agent_id, ["read:data:*"]))["access_token"]
    to_c = ok(wire.delegate(to_b, c.agent_id, ["read:data:y"]))["access_token"]
    for record in claims_of(to_c)["delegation_chain"]:
        message = f"{record['agent']}|{','.join(record['scope'])}|{record['delegated_at']}".encode()
        public.verify(bytes.fromhex(record["signature"]), message)
        with pytest.raises(InvalidSignature):
            public.verify(bytes.fromhex(record["signature"]), message + b"x")


# --- revocation feed --------------------------------------------------------------------------------------------


def _feed(wire: Wire, **params: Any) -> dict[str, Any]:
    body = dict(ok(wire.feed(**params)))
    assert set(body) >= {"revocations", "next_after", "has_more"}
    for entry in body["revocations"]:
        assert set(entry) >= {"seq", "level", "target", "revoked_at"}
        assert isinstance(entry["seq"], int)
        assert entry["level"] in {"token", "agent", "task", "chain"}
        assert RFC3339.fullmatch(entry["revoked_at"]), entry
    return body


def _whole_feed(wire: Wire) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    for _ in range(1000):
        page = _feed(wire, after=after, limit=2)
        entries += page["revocations"]
        if not page["has_more"]:
            return entries
        assert page["next_after"] > after
        after = page["next_after"]
    raise AssertionError("feed never ended")


def test_revocation_feed_lists_revocations_releases_and_cascades_in_order(fresh_wire: Wire) -> None:
    w = fresh_wire
    start = _feed(w, after=0, limit=100)
    assert start["has_more"] is False

    revoked = w.mint(["read:data:x"])
    released = w.mint(["read:data:x"])
    root = w.mint(["read:data:*"])
    holder = w.mint(["read:other:z"])
    delegated = ok(w.delegate(root.token, holder.agent_id, ["read:data:x"]))["access_token"]
    by_agent = w.mint(["read:data:x"])

    ok(w.revoke("token", revoked.jti))
    assert w.release(released.token).status_code == 204
    ok(w.revoke("token", root.jti))  # cascades to the delegated token
    ok(w.revoke("agent", by_agent.agent_id))

    entries = _whole_feed(w)
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    token_targets = [e["target"] for e in entries if e["level"] == "token"]
    for jti in (revoked.jti, released.jti, root.jti, claims_of(delegated)["jti"]):
        assert jti in token_targets, (jti, entries)
    assert {"level": "agent", "target": by_agent.agent_id} in [
        {"level": e["level"], "target": e["target"]} for e in entries
    ]
    # Token entries carry the token's exp (an extension field), so verifiers can forget them after expiry.
    released_entry = next(e for e in entries if e["level"] == "token" and e["target"] == released.jti)
    assert released_entry["exp"] == claims_of(released.token)["exp"]
    assert all("exp" not in e for e in entries if e["level"] != "token")
    # The release precedes the later revocations.
    assert token_targets.index(revoked.jti) < token_targets.index(released.jti) < token_targets.index(root.jti)

    # Paging from the last seq seen gives nothing new.
    tail = _feed(w, after=seqs[-1], limit=100)
    assert tail["revocations"] == []
    assert tail["has_more"] is False

    page = _feed(w, after=0, limit=1)
    assert len(page["revocations"]) == 1
    assert page["has_more"] is True
    assert page["next_after"] == page["revocations"][0]["seq"]


def test_revocation_feed_lists_renewal_predecessors(fresh_wire: Wire) -> None:
    """A local verifier must learn that a renewed token's predecessor is dead, or it would keep accepting it."""
    agent = fresh_wire.mint(["read:data:x"])
    ok(fresh_wire.renew(agent.token))
    targets = {(e["level"], e["target"]) for e in _whole_feed(fresh_wire)}
    assert ("token", agent.jti) in targets


@pytest.mark.parametrize("params", [{"after": "x"}, {"after": -1}, {"limit": "many"}, {"limit": -2}])
def test_revocation_feed_bad_query_is_400(wire: Wire, params: dict[str, Any]) -> None:
    assert_problem(wire.feed(**params), 400)


# --- cascade ----------------------------------------------------------------------------------------------------


def _chain(wire: Wire) -> tuple[Any, str, str]:
    """root → b → c; returns root agent and the two delegated tokens."""
    root = wire.mint(["read:data:*"])
    b, c = wire.mint(["read:other:z"]), wire.mint(["read:other:z"])
    to_b = ok(wire.delegate(root.token, b.agent_id, ["read:data:*"]))["access_token"]
    to_c = ok(wire.delegate(to_b, c.agent_id, ["read:data:x"]))["access_token"]
    return root, to_b, to_c


def test_revoking_a_token_cascades_transitively(fresh_wire: Wire) -> None:
    root, to_b, to_c = _chain(fresh_wire)
    revoked_before = fresh_wire.audit(event_type="token_revoked")["total"]
    ok(fresh_wire.revoke("token", root.jti))
    for token in (root.token, to_b, to_c):
        fresh_wire.assert_invalid(token)
    # Each cascaded revocation is in the audit log.
    assert fresh_wire.audit(event_type="token_revoked")["total"] >= revoked_before + 3


def test_revoking_a_middle_token_cascades_down_not_up(wire: Wire) -> None:
    root, to_b, to_c = _chain(wire)
    ok(wire.revoke("token", claims_of(to_b)["jti"]))
    wire.assert_invalid(to_b)
    wire.assert_invalid(to_c)
    assert wire.is_valid(root.token)


def test_releasing_a_token_cascades(wire: Wire) -> None:
    root, to_b, to_c = _chain(wire)
    assert wire.release(root.token).status_code == 204
    wire.assert_invalid(to_b)
    wire.assert_invalid(to_c)


def test_agent_level_revocation_cascades_to_what_the_agent_delegated(wire: Wire) -> None:
    root, to_b, to_c = _chain(wire)
    ok(wire.revoke("agent", root.agent_id))
    wire.assert_invalid(root.token)
    wire.assert_invalid(to_b)
    wire.assert_invalid(to_c)


def test_renewal_does_not_cascade(wire: Wire) -> None:
    root, to_b, to_c = _chain(wire)
    renewed = ok(wire.renew(root.token))["access_token"]
    wire.assert_invalid(root.token)
    assert wire.is_valid(renewed)
    assert wire.is_valid(to_b)
    assert wire.is_valid(to_c)


# --- exp capping ------------------------------------------------------------------------------------------------


def test_delegated_token_never_outlives_its_delegator(wire: Wire) -> None:
    a = wire.mint(["read:data:*"], max_ttl=30)
    b, c = wire.mint(["read:other:z"]), wire.mint(["read:other:z"])
    body = ok(wire.delegate(a.token, b.agent_id, ["read:data:x"], ttl=600))
    claims = claims_of(body["access_token"])
    assert claims["exp"] <= a.claims["exp"]
    assert body["expires_in"] <= 30
    # Capping holds down the chain.
    deeper = ok(wire.delegate(body["access_token"], c.agent_id, ["read:data:x"], ttl=3600))
    assert claims_of(deeper["access_token"])["exp"] <= claims["exp"]


# --- all off ----------------------------------------------------------------------------------------------------


def test_extensions_off_behaves_like_the_reference_broker(start_broker: StartBroker) -> None:
    with start_broker(extensions=False) as w:
        assert_problem(w.get("/.well-known/jwks.json"), 404, "not_found", routed=False)
        assert_problem(w.get("/v1/revocations", params={"after": 0}), 404, "not_found", routed=False)

        # No exp capping: a delegated token may outlive its delegator.
        a = w.mint(["read:data:*"], max_ttl=30)
        b = w.mint(["read:other:z"])
        long_lived = ok(w.delegate(a.token, b.agent_id, ["read:data:x"], ttl=600))
        assert claims_of(long_lived["access_token"])["exp"] > a.claims["exp"]
        assert long_lived["expires_in"] == 600

        # No cascade: revoking or releasing the delegator leaves delegated tokens alive.
        root, to_b, to_c = _chain(w)
        ok(w.revoke("token", root.jti))
        w.assert_invalid(root.token)
        assert w.is_valid(to_b)
        assert w.is_valid(to_c)

        other_root, other_b, _ = _chain(w)
        assert w.release(other_root.token).status_code == 204
        assert w.is_valid(other_b)

        # The contract itself still holds: chain-level revocation, validate, renew.
        ok(w.revoke("chain", root.agent_id))
        w.assert_invalid(to_b)
        w.assert_invalid(to_c)
        fresh = w.mint(["read:data:x"])
        assert ok(w.renew(fresh.token))["expires_in"] == 300


def test_extensions_off_tokens_still_carry_header_and_claims(start_broker: StartBroker) -> None:
    with start_broker(extensions=False) as w:
        agent = w.mint(["read:data:x"])
        header, claims = jwt_parts(agent.token)
        assert header["alg"] == "EdDSA"
        assert header["typ"] == "JWT"
        assert header["kid"]
        assert claims["sub"] == agent.agent_id
        assert claims["exp"] > time.time()
