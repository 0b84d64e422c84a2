"""Token attacks against the client's *local* verification (JWKS + revocation feed, no round trip per token).

Local verification is where an algorithm-confusion bug would hurt most: nothing asks the broker. Each attack must
raise :class:`TokenInvalid`, and the verifier must still be verifying locally afterwards (a forgery must not be able
to push it into another mode, nor be "accepted" by a fallback). The verifier is configured with the broker's issuer
and audience, as a resource server in front of one deployment would be.
"""

from __future__ import annotations

import pytest
from security_support import Forgeries, Forgery, Genuine

from agentwrit_tools import TokenInvalid, Verifier


def refused_locally(verifier: Verifier, genuine: Genuine, attack: Forgery) -> None:
    tokens = attack(genuine, genuine.agent) + attack(genuine, genuine.delegated) + attack(genuine, genuine.admin)
    assert tokens
    for token in tokens:
        with pytest.raises(TokenInvalid):
            verifier.verify(token)
    assert verifier.verification_mode == "local"
    assert verifier.verify(genuine.agent).scope == ("read:records:P-1",), "the genuine token stopped verifying"


def test_alg_none_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.alg_none)


def test_hs256_keyed_with_raw_public_key_is_refused_by_client_local_verification(
    local_verifier: Verifier, genuine: Genuine
) -> None:
    refused_locally(local_verifier, genuine, Forgeries.hs256_raw_public_key)


def test_hs256_keyed_with_jwk_json_is_refused_by_client_local_verification(
    local_verifier: Verifier, genuine: Genuine
) -> None:
    refused_locally(local_verifier, genuine, Forgeries.hs256_jwk_json)


def test_hs256_keyed_with_pem_public_key_is_refused_by_client_local_verification(
    local_verifier: Verifier, genuine: Genuine
) -> None:
    refused_locally(local_verifier, genuine, Forgeries.hs256_pem_public_key)


def test_kid_mismatch_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.kid_mismatch)


def test_kid_path_traversal_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.kid_path_traversal)


def test_kid_sql_injection_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.kid_sql_injection)


def test_very_long_kid_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.kid_very_long)


def test_unknown_key_with_our_kid_is_refused_by_client_local_verification(
    local_verifier: Verifier, genuine: Genuine
) -> None:
    refused_locally(local_verifier, genuine, Forgeries.unknown_key_with_our_kid)


def test_tampered_header_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.tampered_header)


def test_tampered_payload_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.tampered_payload)


def test_tampered_signature_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.tampered_signature)


def test_truncated_token_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.truncated)


def test_garbage_token_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.garbage)
    for junk in ("", None, 42, b"a.b.c"):
        with pytest.raises(TokenInvalid):
            local_verifier.verify(junk)  # type: ignore[arg-type]


def test_expired_token_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.expired)


def test_nbf_in_the_future_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.nbf_in_future)


def test_wrong_issuer_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.wrong_issuer)


def test_wrong_audience_is_refused_by_client_local_verification(local_verifier: Verifier, genuine: Genuine) -> None:
    refused_locally(local_verifier, genuine, Forgeries.wrong_audience)


def test_control_genuine_tokens_are_accepted_by_client_local_verification(
    local_verifier: Verifier, genuine: Genuine
) -> None:
    for token in (genuine.agent, genuine.delegated, genuine.admin, genuine.app):
        claims = local_verifier.verify(token)
        assert claims.iss == "https://broker.security.test"
        assert claims.aud == ("records-api",)
    assert local_verifier.verification_mode == "local"
