"""``agentwrit-tools broker serve | migrate | keys rotate``: the broker's commands.

::

    agentwrit-tools broker serve   [--db PATH|postgresql://…] [--host H] [--port N] [--dev] …
    agentwrit-tools broker migrate [--db PATH|postgresql://…]     # create or upgrade the schema, nothing else
    agentwrit-tools broker keys rotate [--db PATH|postgresql://…] # a new signing key; old ones published until
                                                                  # every token they signed has expired

``--db`` takes a SQLite file or a PostgreSQL URL; without it ``AGENTWRIT_DATABASE_URL``, then ``AA_DB_PATH``,
then ``./agentwrit-broker.db``. Secrets come from the environment only (``AGENTWRIT_ADMIN_SECRET`` /
``AA_ADMIN_SECRET``; ``AGENTWRIT_KEYRING_SECRET``, required on PostgreSQL). Every mistake — no secret, a bad URL,
an unreachable database, a port in use — is a :class:`BrokerUsageError` the CLI prints as one line (the URL's
password never shown).

This module imports nothing heavy at import time: the commands load the web framework or the database driver
when they run, so a missing extra is one line too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ._settings import BrokerSettings, is_database_url, redact_url

__all__ = [
    "BrokerUsageError",
    "admin_secret_from_env",
    "configure_keys",
    "configure_migrate",
    "configure_serve",
    "keys_command",
    "migrate_command",
    "serve_command",
]

_SECRET_VARS = ("AGENTWRIT_ADMIN_SECRET", "AA_ADMIN_SECRET")
_BROKER_MODULES = {"fastapi", "starlette", "uvicorn", "prometheus_client"}
_BROKER_EXTRA = "the broker needs the 'broker' extra: pip install 'agentwrit-tools[broker]'"
DEFAULT_DB = Path("agentwrit-broker.db")


class BrokerUsageError(Exception):
    """A mistake the user can fix; printed as one line, no traceback."""


def admin_secret_from_env() -> str | None:
    for name in _SECRET_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH|URL",
        help="SQLite file or postgresql:// URL (default: AGENTWRIT_DATABASE_URL, AA_DB_PATH, ./agentwrit-broker.db)",
    )


def _settings(args: argparse.Namespace, **overrides: Any) -> BrokerSettings:
    """Settings from the environment, ``--db`` and ``overrides``; SQLite at ``./agentwrit-broker.db`` by default."""
    db = getattr(args, "db", None)
    if db is not None:
        if is_database_url(db):
            overrides["database_url"] = db
        else:
            overrides["db_path"] = Path(db)
            overrides["database_url"] = None
    try:
        settings = BrokerSettings.from_env(**overrides)
        if settings.db_path is None and settings.database_url is None:
            settings = BrokerSettings.from_env(**overrides, db_path=DEFAULT_DB)
    except ConfigurationError as exc:
        raise BrokerUsageError(str(exc)) from None
    return settings


def describe_db(settings: BrokerSettings) -> str:
    """Where the state lives, as messages may show it."""
    if settings.database_url is not None:
        return redact_url(settings.database_url)
    return str(settings.db_path)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except ConfigurationError as exc:
        raise BrokerUsageError(str(exc)) from None


# -- serve --------------------------------------------------------------------------------------------------------


def configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1, or AA_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port to bind (default 8080, or AA_PORT)")
    _add_db(parser)
    parser.add_argument(
        "--dev", action="store_true", help="generate an admin secret when none is set (printed once); local use only"
    )
    parser.add_argument("--no-extensions", action="store_true", help="behave exactly like the reference broker")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn off authentication rate limits")
    parser.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="comma-separated proxies (addresses or CIDR networks) whose X-Forwarded-For names the client "
        "(default: none, or AA_FORWARDED_ALLOW_IPS)",
    )
    parser.add_argument(
        "--fix-permissions",
        action="store_true",
        help="make the database and key files private (0600) instead of refusing to start when others can read them",
    )


def serve_command(args: argparse.Namespace) -> int:
    try:
        from ._serve import serve, startup_warnings
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in _BROKER_MODULES:
            raise BrokerUsageError(_BROKER_EXTRA) from None
        raise
    secret = admin_secret_from_env()
    generated = False
    if secret is None:
        if not args.dev:
            raise BrokerUsageError(
                "no admin secret: set AGENTWRIT_ADMIN_SECRET (or AA_ADMIN_SECRET), or pass --dev to generate one"
            )
        secret = secrets.token_urlsafe(24)
        generated = True
    overrides: dict[str, Any] = {"admin_secret": secret}
    for flag, key, value in (
        (args.host is not None, "host", args.host),
        (args.port is not None, "port", args.port),
        (args.no_extensions, "extensions", False),
        (args.no_rate_limits, "rate_limits", False),
        (args.forwarded_allow_ips is not None, "forwarded_allow_ips", args.forwarded_allow_ips),
        (args.fix_permissions, "fix_permissions", True),
    ):
        if flag:
            overrides[key] = value
    settings = _settings(args, **overrides)
    for warning in startup_warnings(settings):
        print(f"agentwrit-tools: warning: {warning}", file=sys.stderr)

    def ready(url: str) -> None:
        features = "extensions on" if settings.extensions else "reference behaviour (no extensions)"
        print(f"agentwrit broker listening on {url} ({features}; database {describe_db(settings)})", flush=True)
        if generated:
            print(f"development admin secret (shown once): {secret}", flush=True)

    try:
        serve(settings, on_ready=ready)
    except ConfigurationError as exc:
        raise BrokerUsageError(str(exc)) from None
    except OSError as exc:
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise BrokerUsageError(f"port {settings.port} is already in use on {settings.host}") from None
        raise BrokerUsageError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
    return 0


# -- migrate ------------------------------------------------------------------------------------------------------


def configure_migrate(parser: argparse.ArgumentParser) -> None:
    parser.description = "Create the broker's schema, or bring it up to date, without serving."
    _add_db(parser)


def migrate_command(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def migrate() -> int:
        from ._stores import open_store

        store = await open_store(settings)  # opening applies every pending migration
        try:
            return await store.schema_version()
        finally:
            await store.close()

    version = _run(migrate())
    print(f"database {describe_db(settings)} is at schema version {version} (up to date)")
    return 0


# -- keys rotate --------------------------------------------------------------------------------------------------


def configure_keys(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Rotate the broker's signing key: every replica signs with the new key within a second; the old key stays "
        "in the JWKS until every token it signed has expired, then verifies nothing."
    )
    parser.add_argument("action", choices=["rotate"], help="what to do with the signing keys")
    _add_db(parser)


def keys_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.signing_key_path is not None:
        raise BrokerUsageError(
            "the signing key is kept in a file (AA_SIGNING_KEY_PATH): rotation works on keys kept in the database"
        )

    async def rotate_keys() -> tuple[str, float]:
        from ._keyset import load_keys, require_keyring, rotate
        from ._stores import open_store

        keyring = require_keyring(settings)
        store = await open_store(settings)
        try:
            await load_keys(store, keyring)  # the stored keys open with this secret (or there is a first one)
            key, retire_after = await rotate(store, keyring, max_ttl=settings.max_ttl)
        finally:
            await store.close()
        return key.kid, retire_after

    from ._timefmt import rfc3339_seconds

    kid, retire_after = _run(rotate_keys())
    print(
        f"new signing key {kid} in {describe_db(settings)}; replicas switch to it within a second; "
        f"the previous key(s) stay published until {rfc3339_seconds(retire_after)}"
    )
    return 0
