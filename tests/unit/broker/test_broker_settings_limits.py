"""Settings from the AA_* environment, the token-bucket rate limiter, and secret hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwrit_tools.broker import BrokerSettings
from agentwrit_tools.broker._ratelimit import RateLimiter
from agentwrit_tools.broker._secrets import hash_admin_secret, verify_admin_secret
from agentwrit_tools.errors import ConfigurationError


def test_defaults_match_the_contract() -> None:
    s = BrokerSettings()
    assert (s.trust_domain, s.issuer, s.audience) == ("agentwrit.local", "", None)
    assert (s.default_ttl, s.max_ttl, s.app_token_ttl, s.admin_token_ttl) == (300, 86400, 1800, 300)
    assert (s.admin_auth_rate, s.admin_auth_burst, s.app_auth_burst) == (5.0, 10, 3)
    assert s.app_auth_rate == pytest.approx(10 / 60)
    assert (s.nonce_ttl, s.extensions, s.rate_limits, s.max_body_bytes) == (30, True, True, 1024 * 1024)


def test_from_env_reads_the_reference_variables(tmp_path: Path) -> None:
    env = {
        "AA_ADMIN_SECRET": "s3cret",
        "AA_TRUST_DOMAIN": "example.org",
        "AA_ISSUER": "https://broker.example.org",
        "AA_AUDIENCE": "api-a, api-b",
        "AA_PORT": "9090",
        "AA_DEFAULT_TTL": "120",
        "AA_MAX_TTL": "3600",
        "AA_APP_TOKEN_TTL": "600",
        "AA_DB_PATH": str(tmp_path / "b.db"),
        "AA_SIGNING_KEY_PATH": str(tmp_path / "k.pem"),
        "UNRELATED": "x",
    }
    s = BrokerSettings.from_env(env)
    assert s.admin_secret == "s3cret"
    assert (s.trust_domain, s.issuer, s.port) == ("example.org", "https://broker.example.org", 9090)
    assert s.audience_list == ["api-a", "api-b"]
    assert (s.default_ttl, s.max_ttl, s.app_token_ttl) == (120, 3600, 600)
    assert (s.db_path, s.signing_key_path) == (tmp_path / "b.db", tmp_path / "k.pem")
    assert "s3cret" not in repr(s)


def test_overrides_win_over_the_environment() -> None:
    s = BrokerSettings.from_env({"AA_PORT": "9090", "AA_ADMIN_SECRET": "a"}, port=1234, extensions=False)
    assert (s.port, s.extensions, s.admin_secret) == (1234, False, "a")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AA_PORT": "http"}, "AA_PORT"),
        ({"AA_MAX_TTL": "0"}, "max_ttl"),
        ({"AA_DEFAULT_TTL": "900", "AA_MAX_TTL": "60"}, "default_ttl"),
        ({"AA_TRUST_DOMAIN": "a/b"}, "trust_domain"),
        ({"AA_EXTENSIONS": "maybe"}, "AA_EXTENSIONS"),
    ],
)
def test_bad_environment_values_are_named_but_not_echoed(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        BrokerSettings.from_env(env)
    for value in env.values():
        if len(value) > 3:
            assert value not in str(info.value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, 10, clock=clock)
    assert [limiter.acquire("ip") for _ in range(10)] == [0.0] * 10
    wait = limiter.acquire("ip")
    assert wait == pytest.approx(0.2)
    assert RateLimiter.retry_after(wait) == "1"
    assert limiter.acquire("other-ip") == 0.0  # keys are independent
    clock.now += 0.2
    assert limiter.acquire("ip") == 0.0
    assert limiter.acquire("ip") > 0


def test_app_rate_of_ten_per_minute_with_burst_three() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10 / 60, 3, clock=clock)
    assert [limiter.acquire("client") == 0.0 for _ in range(4)] == [True, True, True, False]
    assert RateLimiter.retry_after(limiter.acquire("client")) == "6"
    clock.now += 6.0
    assert limiter.acquire("client") == 0.0


def test_key_table_is_bounded() -> None:
    limiter = RateLimiter(1.0, 1, max_keys=100, clock=FakeClock())
    for i in range(1000):
        limiter.acquire(f"k{i}")
    assert len(limiter._buckets) == 100


def test_admin_secret_hash_is_salted_and_verifies() -> None:
    first, second = hash_admin_secret("correct horse"), hash_admin_secret("correct horse")
    assert first != second
    assert first.startswith("scrypt$")
    assert verify_admin_secret("correct horse", first)
    assert not verify_admin_secret("correct horsE", first)
    assert not verify_admin_secret("correct horse", "garbage")
    assert not verify_admin_secret("\ud800", first)  # a lone surrogate from JSON must not crash


def test_hardening_settings_from_the_environment() -> None:
    env = {
        "AA_FORWARDED_ALLOW_IPS": "10.0.0.1, 192.168.0.0/16,",
        "AGENTWRIT_KEYRING_SECRET": "keep it sealed",
    }
    settings = BrokerSettings.from_env(env)
    assert settings.forwarded_allow_ips == ("10.0.0.1", "192.168.0.0/16")
    assert settings.keyring_secret == "keep it sealed"
    assert "keep it sealed" not in repr(settings)
    defaults = BrokerSettings()
    assert defaults.forwarded_allow_ips == ()  # no proxy is believed unless named
    assert (defaults.session_lifetime, defaults.admin_session_lifetime) == (86400, 3600)


@pytest.mark.parametrize(
    "changes",
    [
        {"forwarded_allow_ips": ("proxy.internal",)},
        {"forwarded_allow_ips": "10.0.0.1,not-an-ip"},
        {"keyring_secret": ""},
        {"keyring_secret": "with\x00nul"},
        {"admin_secret": "with\x00nul"},
        {"session_lifetime": 0},
        {"admin_session_lifetime": -1},
        {"audit_failure_window": -1},
        {"trust_domain": "agent\u200bwrit.local"},
    ],
)
def test_hardening_settings_refuse_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        BrokerSettings(**changes)  # type: ignore[arg-type]
