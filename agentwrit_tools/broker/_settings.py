"""Broker configuration: one frozen object, built in code or from the ``AA_*`` environment of the real broker.

The defaults match the reference AgentWrit broker so that a client cannot tell the difference, except for the
extensions (``extensions=True``), which add endpoints and tighten lifetimes but never change an existing
response shape. Turning them off makes the embedded broker behave like the reference one for compatibility tests.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigurationError
from ..scopes import is_identifier
from ._keyring import ENV_KEYRING_SECRET

__all__ = ["ENV_DATABASE_URL", "BrokerSettings", "check_database_url", "redact_url"]

ENV_DATABASE_URL = "AGENTWRIT_DATABASE_URL"
_PG_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(value: str) -> bool:
    """True for a PostgreSQL URL (what ``--db`` takes besides a SQLite file path)."""
    return value.lower().startswith(_PG_SCHEMES)


def check_database_url(value: object) -> str:
    """The URL, if it is a PostgreSQL one (``postgresql://user@host:port/db?...``).

    Raises:
        ConfigurationError: anything else (the message never repeats the value: it may hold a password).
    """
    if not isinstance(value, str) or not is_database_url(value) or "\x00" in value:
        raise ConfigurationError(
            f"the database URL must start with postgresql:// ({ENV_DATABASE_URL} or --db); "
            "for SQLite give a file path to --db"
        )
    return value


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (what messages and logs may show)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        redacted = rest
    else:
        user, colon, _ = userinfo.partition(":")
        redacted = f"{user}{':***' if colon else ''}@{host}"
    return f"{scheme}{sep}{redacted.split('?', 1)[0]}"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _proxies(value: object) -> tuple[str, ...]:
    """Trusted proxies as a tuple of ``*``, addresses and networks (a comma-separated string is accepted)."""
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    proxies: list[str] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if text != "*":
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ConfigurationError(
                    "broker setting forwarded_allow_ips takes IP addresses, networks (CIDR) or '*'"
                ) from None
        proxies.append(text)
    return tuple(proxies)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Everything that decides how the broker behaves.

    Attributes:
        admin_secret: the operator's shared secret. ``None`` is allowed only when the database already holds a
            hashed secret from an earlier run (then that one keeps working).
        trust_domain: the SPIFFE trust domain in agent IDs.
        issuer: the ``iss`` claim; empty like the reference broker's default.
        audience: the ``aud`` claim (comma-separated for several); the claim is omitted when unset.
        default_ttl: agent token lifetime when a launch token does not say.
        max_ttl: hard cap on every issued token, whatever was asked.
        app_token_ttl: default app token lifetime for apps created without one.
        admin_token_ttl: admin token lifetime (fixed by the contract).
        session_lifetime: absolute lifetime, in seconds from first issue, of an app, agent or delegated token and
            every renewal of it: renewal never extends past it (and is refused once it has passed).
        admin_session_lifetime: the same for admin tokens (short: an admin session renewed without the secret).
        db_path: the SQLite file holding all state; ``None`` means an in-memory database (lost on exit, tests only).
        database_url: a ``postgresql://`` URL (``AGENTWRIT_DATABASE_URL``): the state lives in that database,
            shared by every replica pointed at it; ``db_path`` is then unused. Needs ``keyring_secret``.
        db_pool_size: PostgreSQL connections a replica keeps at most.
        revocation_notify: PostgreSQL: learn of other replicas' revocations by LISTEN/NOTIFY as they commit (on),
            or only by polling (off).
        revocation_poll_interval: PostgreSQL: seconds between polls of the revocation rules (also a backstop
            when notifications are on).
        revocation_max_staleness: PostgreSQL: a replica whose copy of the revocation rules is older than this
            (seconds) refuses to answer from it (503) rather than accept a token revoked elsewhere.
        housekeeping_interval: seconds between purges of expired state (0: never).
        purge_batch: rows deleted per statement by housekeeping (each batch its own short transaction).
        signing_key_path: a PEM file for the Ed25519 key; ``None`` keeps the key inside the database.
        keyring_secret: seals private keys at rest (``AGENTWRIT_KEYRING_SECRET``): the signing key is stored
            encrypted in the database or the PEM file. ``None`` stores it in the clear (files stay 0600).
        fix_permissions: take group and other permissions off the database and key files instead of refusing to
            start when they have any.
        extensions: JWKS, revocation feed, cascade revocation and ``exp`` capping on delegation. ``False`` behaves
            exactly like the reference broker (the extension endpoints answer 404).
        rate_limits: enforce the contract's rate limits on the two authentication endpoints.
        admin_auth_rate: admin authentications per second per client IP.
        admin_auth_burst: admin authentications allowed back to back per client IP.
        app_auth_rate: app authentications per second per client_id (10/min).
        app_auth_burst: app authentications allowed back to back per client_id.
        nonce_ttl: lifetime of a registration challenge, in seconds.
        launch_token_ttl: default lifetime of a launch token, in seconds.
        delegation_ttl: default lifetime of a delegated token, in seconds.
        max_delegation_depth: chain length at which a delegator is refused.
        max_body_bytes: request bodies above this are refused with 413.
        host: address ``broker serve`` binds (``AA_HOST``).
        port: port ``broker serve`` binds (``AA_PORT``).
        audit_failure_window: seconds over which refusals of requests that proved nothing (wrong secret, forged
            or revoked bearer, unknown launch token) are aggregated per source: the first is recorded at once,
            the rest as one summary event when the window closes. ``0`` records each one.
        forwarded_allow_ips: the proxies (addresses or networks, ``*`` for any) whose ``X-Forwarded-For`` names
            the client; from anyone else the header is ignored. Empty (the default): the peer of the connection is
            the client, for rate limits and the audit alike.
    """

    admin_secret: str | None = field(default=None, repr=False)
    trust_domain: str = "agentwrit.local"
    issuer: str = ""
    audience: str | None = None
    default_ttl: int = 300
    max_ttl: int = 86400
    app_token_ttl: int = 1800
    admin_token_ttl: int = 300
    session_lifetime: int = 86400
    admin_session_lifetime: int = 3600
    db_path: Path | None = None
    database_url: str | None = field(default=None, repr=False)
    db_pool_size: int = 10
    revocation_notify: bool = True
    revocation_poll_interval: float = 0.25
    revocation_max_staleness: float = 1.0
    housekeeping_interval: float = 60.0
    purge_batch: int = 500
    signing_key_path: Path | None = None
    keyring_secret: str | None = field(default=None, repr=False)
    fix_permissions: bool = False
    extensions: bool = True
    rate_limits: bool = True
    admin_auth_rate: float = 5.0
    admin_auth_burst: int = 10
    app_auth_rate: float = 10.0 / 60.0
    app_auth_burst: int = 3
    nonce_ttl: int = 30
    launch_token_ttl: int = 30
    delegation_ttl: int = 60
    max_delegation_depth: int = 5
    max_body_bytes: int = 1024 * 1024
    host: str = "127.0.0.1"
    port: int = 8080
    audit_failure_window: float = 60.0
    forwarded_allow_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "default_ttl",
            "max_ttl",
            "app_token_ttl",
            "admin_token_ttl",
            "session_lifetime",
            "admin_session_lifetime",
            "nonce_ttl",
            "launch_token_ttl",
            "delegation_ttl",
            "max_delegation_depth",
            "max_body_bytes",
            "admin_auth_burst",
            "app_auth_burst",
            "db_pool_size",
            "purge_batch",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"broker setting {name} must be a positive integer")
        for name in ("admin_auth_rate", "app_auth_rate", "revocation_poll_interval", "revocation_max_staleness"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(f"broker setting {name} must be a positive number")
        for name in ("audit_failure_window", "housekeeping_interval"):
            window = getattr(self, name)
            if isinstance(window, bool) or not isinstance(window, (int, float)) or window < 0:
                raise ConfigurationError(f"broker setting {name} must be a number of seconds (0 or more)")
        if self.database_url is not None:
            object.__setattr__(self, "database_url", check_database_url(self.database_url))
            if self.signing_key_path is not None:
                raise ConfigurationError(
                    "on PostgreSQL the signing keys live in the database: AA_SIGNING_KEY_PATH is for SQLite only"
                )
        if self.default_ttl > self.max_ttl:
            raise ConfigurationError("broker setting default_ttl must not exceed max_ttl")
        if not is_identifier(self.trust_domain):
            raise ConfigurationError("broker setting trust_domain must be a plain host name (letters, digits, . -)")
        if self.admin_secret is not None and (not self.admin_secret or "\x00" in self.admin_secret):
            raise ConfigurationError("the admin secret must not be empty or hold NUL characters")
        if self.keyring_secret is not None and (not self.keyring_secret or "\x00" in self.keyring_secret):
            raise ConfigurationError(f"{ENV_KEYRING_SECRET} must not be empty or hold NUL characters")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError("broker setting port must be between 0 and 65535")
        object.__setattr__(self, "forwarded_allow_ips", _proxies(self.forwarded_allow_ips))
        # Accept plain strings for paths (callers and AA_* values often have them).
        if self.db_path is not None:
            object.__setattr__(self, "db_path", Path(self.db_path))
        if self.signing_key_path is not None:
            object.__setattr__(self, "signing_key_path", Path(self.signing_key_path))

    @property
    def audience_list(self) -> list[str] | None:
        """The ``aud`` claim as issued: a list, or ``None`` to omit it."""
        if not self.audience:
            return None
        items = [part.strip() for part in self.audience.split(",") if part.strip()]
        return items or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> BrokerSettings:
        """Read the reference broker's ``AA_*`` variables; keyword overrides win over the environment.

        Ours too: ``AGENTWRIT_KEYRING_SECRET``, ``AGENTWRIT_DATABASE_URL``, and for PostgreSQL replicas
        ``AGENTWRIT_DB_POOL_SIZE``, ``AGENTWRIT_REVOCATION_NOTIFY`` (true/false) and
        ``AGENTWRIT_REVOCATION_POLL_INTERVAL`` (seconds).

        Raises:
            ConfigurationError: a variable is present but malformed (named in the message, value never echoed
                because it may be the secret).
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}

        def text(var: str, key: str) -> None:
            if var in env:
                values[key] = env[var]

        def integer(var: str, key: str) -> None:
            if var in env:
                try:
                    values[key] = int(env[var].strip())
                except ValueError:
                    raise ConfigurationError(f"{var} must be an integer") from None

        def number(var: str, key: str) -> None:
            if var in env:
                try:
                    values[key] = float(env[var].strip())
                except ValueError:
                    raise ConfigurationError(f"{var} must be a number") from None

        def path(var: str, key: str) -> None:
            if env.get(var):
                values[key] = Path(env[var])

        def flag(var: str, key: str) -> None:
            if var in env:
                raw = env[var].strip().lower()
                if raw in _TRUE:
                    values[key] = True
                elif raw in _FALSE:
                    values[key] = False
                else:
                    raise ConfigurationError(f"{var} must be true or false")

        if env.get("AA_ADMIN_SECRET"):
            values["admin_secret"] = env["AA_ADMIN_SECRET"]
        if env.get(ENV_KEYRING_SECRET):
            values["keyring_secret"] = env[ENV_KEYRING_SECRET]
        if env.get(ENV_DATABASE_URL):
            values["database_url"] = env[ENV_DATABASE_URL]
        text("AA_TRUST_DOMAIN", "trust_domain")
        text("AA_ISSUER", "issuer")
        if env.get("AA_AUDIENCE"):
            values["audience"] = env["AA_AUDIENCE"]
        text("AA_HOST", "host")
        text("AA_FORWARDED_ALLOW_IPS", "forwarded_allow_ips")
        integer("AA_PORT", "port")
        integer("AA_DEFAULT_TTL", "default_ttl")
        integer("AA_MAX_TTL", "max_ttl")
        integer("AA_APP_TOKEN_TTL", "app_token_ttl")
        path("AA_DB_PATH", "db_path")
        path("AA_SIGNING_KEY_PATH", "signing_key_path")
        flag("AA_EXTENSIONS", "extensions")
        flag("AGENTWRIT_REVOCATION_NOTIFY", "revocation_notify")
        number("AGENTWRIT_REVOCATION_POLL_INTERVAL", "revocation_poll_interval")
        integer("AGENTWRIT_DB_POOL_SIZE", "db_pool_size")
        flag("AA_RATE_LIMITS", "rate_limits")
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
