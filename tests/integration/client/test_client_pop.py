"""The client's side of proof of possession, against the real broker with its extensions on and off.

``proof_of_possession=True`` asks for key-bound tokens. With the extensions on every credential — minted,
launched under a task, renewed, delegated — is bound to the key of the agent that holds it, and
``headers_for``/``CredentialAuth`` sign a fresh proof per request that :func:`agentwrit_tools.pop.check_proof`
accepts. With the extensions off (the reference contract) the same code gets bearer tokens and presents them as
such: nothing breaks, nothing is bound.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from client_helpers import new_app

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError
from agentwrit_tools.client import CredentialAuth
from agentwrit_tools.pop import check_proof, key_thumbprint

URL = "https://api.example.test/data/x"


def _client(running: Any, app: Any, **options: Any) -> Broker:
    return Broker(running.url, app.client_id, app.client_secret, proof_of_possession=True, **options)


def _assert_presents(credential: Any, method: str = "GET", url: str = URL) -> None:
    headers = credential.headers_for(method, url)
    if credential.key_bound:
        assert set(headers) == {"Authorization", "DPoP"}
        assert headers["Authorization"] == f"DPoP {credential.access_token}"
        proof = check_proof(
            headers["DPoP"], method=method, url=url, access_token=credential.access_token, jkt=credential.claims.jkt
        )
        assert proof.jkt == key_thumbprint(credential._key)
    else:
        assert headers == {"Authorization": f"Bearer {credential.access_token}"}


def test_minted_credentials_are_bound_to_their_own_key(any_broker: Any, app: Any, extensions: bool) -> None:
    with _client(any_broker, app) as client:
        first = client.mint("read:data:x", orch_id="o", task_id="pop-mint")
        second = client.mint("read:data:x", orch_id="o", task_id="pop-mint")
        assert first.key_bound is extensions
        assert second.key_bound is extensions
        if extensions:
            assert first.claims.jkt == key_thumbprint(first._key) != second.claims.jkt
        _assert_presents(first)
        _assert_presents(first)  # a fresh proof each time
        h1, h2 = first.headers_for("GET", URL), first.headers_for("GET", URL)
        assert h1 != h2 if extensions else h1 == h2
        first.release()
        second.release()


def test_renewal_keeps_the_binding_and_the_key(any_broker: Any, app: Any, extensions: bool) -> None:
    with _client(any_broker, app) as client, client.mint("read:data:x", orch_id="o", task_id="pop-renew") as cred:
        before = cred.claims
        cred.renew()
        assert cred.claims.jti != before.jti
        assert cred.claims.jkt == before.jkt
        _assert_presents(cred, "POST")


def test_task_launchers_mint_bound_credentials(any_broker: Any, app: Any, extensions: bool) -> None:
    with _client(any_broker, app) as client:
        launcher = client.task_launcher(["read:data:*"], orch_id="o", task_id="pop-launch", ttl=60)
        with launcher.mint("read:data:y", ttl=10) as cred:
            assert cred.key_bound is extensions
            _assert_presents(cred)


def test_delegation_to_a_credential_carries_the_delegates_key(any_broker: Any, app: Any, extensions: bool) -> None:
    with _client(any_broker, app) as client:
        holder = client.mint("read:data:*", orch_id="o", task_id="pop-deleg")
        delegate = client.mint("read:data:y", orch_id="o", task_id="pop-deleg")
        with holder.delegate(delegate, "read:data:y", ttl=30) as delegated:
            assert delegated.key_bound is extensions
            if extensions:
                assert delegated.claims.jkt == delegate.claims.jkt != holder.claims.jkt
            _assert_presents(delegated)
        # Delegated to an agent by its id only: the token is bound to a key this process does not hold.
        with holder.delegate(delegate.agent_id, "read:data:y", ttl=30) as by_id:
            if extensions:
                assert by_id.key_bound
                with pytest.raises(ConfigurationError, match="does not hold"):
                    by_id.headers_for("GET", URL)
            else:
                _assert_presents(by_id)
        holder.release()
        delegate.release()


def test_without_the_setting_tokens_are_bearer_tokens(any_broker: Any, app: Any) -> None:
    with Broker(any_broker.url, app.client_id, app.client_secret) as client:
        cred = client.mint("read:data:x", orch_id="o", task_id="pop-off")
        assert not cred.key_bound
        assert cred.claims.cnf is None
        _assert_presents(cred)
        cred.release()


def test_headers_for_refuses_a_url_it_cannot_name(broker: Any) -> None:
    with (
        _client(broker, new_app(broker)) as client,
        client.mint("read:data:x", orch_id="o", task_id="pop-url") as cred,
        pytest.raises(ConfigurationError, match="absolute"),
    ):
        cred.headers_for("GET", "/relative/path")


def test_credential_auth_presents_on_every_request(any_broker: Any, app: Any, extensions: bool) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with _client(any_broker, app) as client, client.mint("read:data:x", orch_id="o", task_id="pop-auth") as cred:
        with httpx.Client(transport=httpx.MockTransport(handler), auth=CredentialAuth(cred)) as http:
            http.get("https://api.example.test/data/x", params={"q": "1"})
            http.post("https://api.example.test/data/x")
        assert len(seen) == 2
        for request in seen:
            scheme = "DPoP" if extensions else "Bearer"
            assert request.headers["authorization"] == f"{scheme} {cred.access_token}"
            if extensions:
                check_proof(
                    request.headers["dpop"],
                    method=request.method,
                    url=str(request.url),
                    access_token=cred.access_token,
                    jkt=str(cred.claims.jkt),
                )
        if extensions:
            assert seen[0].headers["dpop"] != seen[1].headers["dpop"]


@pytest.mark.anyio
async def test_the_async_client_binds_too(any_broker: Any, app: Any, extensions: bool) -> None:
    async with (
        AsyncBroker(any_broker.url, app.client_id, app.client_secret, proof_of_possession=True) as client,
        client.mint("read:data:x", orch_id="o", task_id="pop-async") as cred,
    ):
        assert cred.key_bound is extensions
        _assert_presents(cred)
        await cred.renew()
        _assert_presents(cred)
