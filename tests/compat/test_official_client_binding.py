"""Key-bound tokens are an extension: the official `agentwrit==0.3.0` client, which never asks for one, keeps working.

Against our broker with its extensions on and off, the official client's agents get plain bearer tokens (no
``cnf``) through registration, renewal and delegation; a protected API that checks proofs only for bound tokens
(the default, ``possession="auto"``) serves them; and the official client's ``validate`` reads a token our client
bound to a key (it ignores ``cnf``, as it ignores every claim it does not know).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from agentwrit import AgentWritApp
from support import broker_extensions_on_or_off

from agentwrit_tools import Broker, Verifier
from agentwrit_tools.resource import AccessRefused, require


@pytest.fixture(scope="module", params=[True, False], ids=["extensions-on", "binding-off"])
def any_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from broker_extensions_on_or_off(request, tmp_path_factory)


@pytest.fixture
def official(any_broker: Any) -> Iterator[AgentWritApp]:
    registered = any_broker.create_app(f"compat-pop-{uuid.uuid4().hex[:8]}", ["read:data:*"])
    client = AgentWritApp(any_broker.url, registered.client_id, registered.client_secret, timeout=30.0)
    yield client
    client.close()


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def test_the_official_client_gets_bearer_tokens_that_resources_accept(any_broker: Any, official: AgentWritApp) -> None:
    task = f"compat-pop-{uuid.uuid4().hex[:8]}"
    lead = official.create_agent("orch-compat", task, ["read:data:*"])
    helper = official.create_agent("orch-compat", task, ["read:data:h"])
    assert "cnf" not in _payload(lead.access_token)
    lead.renew()
    assert "cnf" not in _payload(lead.access_token)
    delegated = lead.delegate(helper.agent_id, ["read:data:h"])
    assert "cnf" not in _payload(delegated.access_token)
    with Verifier(any_broker.url, strict_verify=True) as verifier:
        for token in (lead.access_token, delegated.access_token):
            claims = require(verifier, token, "read:data:{item}", params={"item": "h"}, access_log=None)
            assert claims.jkt is None
        # Where a resource demands key-bound tokens, a bearer token is refused (401), never let through.
        with pytest.raises(AccessRefused, match="only key-bound"):
            require(verifier, lead.access_token, "read:data:{item}", params={"item": "h"}, possession="required")
    lead.release()
    helper.release()


def test_the_official_client_validates_a_key_bound_token(any_broker: Any, official: AgentWritApp) -> None:
    app = any_broker.create_app(f"compat-pop-ours-{uuid.uuid4().hex[:8]}", ["read:data:*"])
    with (
        Broker(any_broker.url, app.client_id, app.client_secret, proof_of_possession=True) as ours,
        ours.mint("read:data:x", orch_id="orch-compat", task_id="compat-bound") as cred,
    ):
        assert cred.key_bound is bool(any_broker.settings.extensions)
        result = official.validate(cred.access_token)
        assert result.valid is True
        assert result.claims is not None
        assert result.claims.jti == cred.claims.jti
        assert result.claims.scope == ["read:data:x"]
