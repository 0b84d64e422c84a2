"""Configuration: URL checks, environment, secrets kept out of repr."""

from __future__ import annotations

import pytest
from client_fakes import ADMIN_SECRET, CLIENT_ID, CLIENT_SECRET

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError

ENV = {
    "AGENTWRIT_BROKER_URL": "http://127.0.0.1:9",
    "AGENTWRIT_CLIENT_ID": CLIENT_ID,
    "AGENTWRIT_CLIENT_SECRET": CLIENT_SECRET,
    "AGENTWRIT_ADMIN_SECRET": ADMIN_SECRET,
}


def test_from_env_reads_all_four_variables() -> None:
    with Broker.from_env(ENV, timeout=3.0) as broker:
        assert broker.broker_url == "http://127.0.0.1:9"
        assert broker.settings.client_id == CLIENT_ID
        assert broker.settings.client_secret == CLIENT_SECRET
        assert broker.settings.admin_secret == ADMIN_SECRET
        assert broker.settings.timeout == 3.0


def test_from_env_uses_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    broker = AsyncBroker.from_env()
    assert isinstance(broker, AsyncBroker)
    assert broker.settings.client_id == CLIENT_ID


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AGENTWRIT_BROKER_URL": "http://x", "AGENTWRIT_CLIENT_ID": "only-the-id"},
        {"AGENTWRIT_BROKER_URL": "http://x", "AGENTWRIT_CLIENT_SECRET": "only-the-secret"},
    ],
)
def test_incomplete_environments_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Broker.from_env(env)


def test_verification_only_environment_is_fine() -> None:
    with Broker.from_env({"AGENTWRIT_BROKER_URL": "https://broker.example"}) as broker:
        assert broker.settings.client_id is None


@pytest.mark.parametrize(
    "url", ["", "ftp://x", "not a url", "http://", "http://x?y=1", "http://user:pw@x", "127.0.0.1:8080"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Broker(url)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        Broker("http://x", CLIENT_ID)
    with pytest.raises(ConfigurationError):
        Broker("http://x", timeout=0)
    with pytest.raises(ValueError, match="revocation_bound"):
        Broker("http://x", revocation_bound=-1)


def test_secrets_never_show_in_repr() -> None:
    broker = Broker("http://x", CLIENT_ID, CLIENT_SECRET, admin_secret=ADMIN_SECRET)
    for text in (repr(broker), str(broker), repr(broker.settings), repr(broker._core.app), repr(broker.admin)):
        assert CLIENT_SECRET not in text
        assert ADMIN_SECRET not in text
    assert CLIENT_ID in repr(broker)
    broker.close()


def test_max_token_ttl_reaches_the_revocation_memory_and_must_be_positive() -> None:
    # A broker configured with a longer global max TTL than the contract's default needs the client to remember
    # revocations with no known exp for as long.
    with Broker("http://127.0.0.1:9", max_token_ttl=7 * 86400) as broker:
        assert broker._core.verifier.revocations._max_ttl == 7 * 86400
    with Broker("http://127.0.0.1:9") as broker:
        assert broker._core.verifier.revocations._max_ttl == 86400
    with pytest.raises(ConfigurationError, match="max_token_ttl"):
        Broker("http://127.0.0.1:9", max_token_ttl=0)
