"""Configuration shared by every client class: URL checks, environment, defaults, and building the core."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from ..errors import ConfigurationError
from ._admin import admin_login, app_login
from ._flows import Core
from ._protocol import RetryPolicy
from ._session import TokenSession
from ._verify import VerifierCore

__all__ = ["DEFAULT_MAX_CONNECTIONS", "Settings", "env_settings"]

ENV_URL = "AGENTWRIT_BROKER_URL"
ENV_CLIENT_ID = "AGENTWRIT_CLIENT_ID"
ENV_CLIENT_SECRET = "AGENTWRIT_CLIENT_SECRET"  # noqa: S105 - the name of a variable, not a secret
ENV_ADMIN_SECRET = "AGENTWRIT_ADMIN_SECRET"  # noqa: S105


# Enough to keep a broker busy: it serves one request at a time on one SQLite connection, and a real
# deployment's latency is mostly the network. More connections only make the client's pool bookkeeping slower.
DEFAULT_MAX_CONNECTIONS = 16


def normalize_url(broker_url: str) -> str:
    """Validate the broker URL and drop a trailing slash (paths are appended as ``/v1/...``)."""
    if not isinstance(broker_url, str) or not broker_url:
        raise ConfigurationError("broker_url is required (e.g. http://127.0.0.1:8080)")
    try:
        url = httpx.URL(broker_url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigurationError("broker_url is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError("broker_url must be an http:// or https:// URL with a host")
    if url.query or url.fragment:
        raise ConfigurationError("broker_url must not carry a query or a fragment")
    if url.username or url.password:
        raise ConfigurationError("broker_url must not carry credentials")
    return broker_url.rstrip("/")


@dataclass(frozen=True)
class Settings:
    """Everything a client needs; secrets are kept out of repr.

    Attributes:
        broker_url: base URL of the broker.
        client_id: app client id (None: verification and operator calls only).
        client_secret: app client secret.
        admin_secret: operator secret (None: no operator calls).
        timeout: seconds for connect, read, write and pool waits of one request.
        retry: resend policy (transport failures on safe calls, 429 with a short ``Retry-After``).
        revocation_bound: seconds; see :mod:`agentwrit_tools.client._verify`.
        strict_verify: always verify remotely.
        leeway: seconds of clock skew tolerated when verifying locally.
        issuer: required ``iss``, when set.
        audience: required member of ``aud``, when set.
        max_connections: size of the connection pool (and, async, the most requests in flight at once).
        max_token_ttl: the broker's global max TTL (``AA_MAX_TTL``, default 86400 s): how long a revoked token
            whose ``exp`` is unknown must be remembered by local verification.
        proof_of_possession: ask for key-bound tokens (a broker extension): each is bound to its agent's key and
            presented with a proof per request (``credential.headers_for``); against a broker without the
            extension the tokens are plain bearer tokens.
    """

    broker_url: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    admin_secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    revocation_bound: float = 1.0
    strict_verify: bool = False
    leeway: float = 2.0
    issuer: str | None = None
    audience: str | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_token_ttl: float = 86400.0
    proof_of_possession: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "broker_url", normalize_url(self.broker_url))
        if (self.client_id is None) != (self.client_secret is None) or self.client_id == "" or self.client_secret == "":
            raise ConfigurationError("client_id and client_secret go together: give both or neither")
        if self.admin_secret == "":
            raise ConfigurationError("admin_secret must not be empty")
        if self.timeout <= 0 or self.max_connections < 1:
            raise ConfigurationError("timeout must be positive and max_connections at least 1")
        if self.max_token_ttl <= 0:
            raise ConfigurationError("max_token_ttl must be positive (the broker's global max TTL, in seconds)")

    def build_core(self) -> Core:
        verifier = VerifierCore(
            self.retry,
            strict=self.strict_verify,
            revocation_bound=self.revocation_bound,
            leeway=self.leeway,
            issuer=self.issuer,
            audience=self.audience,
            max_token_ttl=self.max_token_ttl,
        )
        app = admin = None
        if self.client_id is not None and self.client_secret is not None:
            app = TokenSession("app-session", app_login(self.client_id, self.client_secret), self.retry)
        if self.admin_secret is not None:
            admin = TokenSession("admin-session", admin_login(self.admin_secret), self.retry)
        verifier.feed_session = app or admin
        return Core(policy=self.retry, verifier=verifier, app=app, admin=admin, bind_keys=self.proof_of_possession)

    def timeouts(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout)

    def limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Read ``AGENTWRIT_BROKER_URL``, ``AGENTWRIT_CLIENT_ID``, ``AGENTWRIT_CLIENT_SECRET``, ``AGENTWRIT_ADMIN_SECRET``.

    Raises:
        ConfigurationError: the URL is missing, or only one of client id and secret is set.
    """
    env = os.environ if environ is None else environ
    url = env.get(ENV_URL, "").strip()
    if not url:
        raise ConfigurationError(f"{ENV_URL} is not set")
    client_id = env.get(ENV_CLIENT_ID) or None
    client_secret = env.get(ENV_CLIENT_SECRET) or None
    if (client_id is None) != (client_secret is None):
        raise ConfigurationError(f"set both {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}, or neither")
    return {
        "broker_url": url,
        "client_id": client_id,
        "client_secret": client_secret,
        "admin_secret": env.get(ENV_ADMIN_SECRET) or None,
    }
