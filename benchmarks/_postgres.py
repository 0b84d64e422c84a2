"""A real PostgreSQL on this machine for the tests and the benchmarks, with nothing to install by hand.

``AGENTWRIT_TEST_DATABASE_URL`` names a server to use (a role that may create databases). Without it, the server
comes from the ``pgserver`` wheel (PostgreSQL's own binaries packaged for pip, installed by ``make setup``),
initialised in a directory of its own and reached over a Unix socket there. PostgreSQL refuses to run as root;
``pgserver`` then runs it as an unprivileged system user of its own (``pgserver``, created on first use), which
is how CI, running as root on a fresh machine, gets one too.

Each user of it gets a database of its own (:meth:`LocalPostgres.create_database`), so tests stay independent.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ENV_TEST_DATABASE_URL", "LocalPostgres", "with_database"]

ENV_TEST_DATABASE_URL = "AGENTWRIT_TEST_DATABASE_URL"


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


class LocalPostgres:
    """A PostgreSQL server: the one ``AGENTWRIT_TEST_DATABASE_URL`` names, or one started from ``pgserver``.

    Args:
        fast: turn ``fsync`` off on a server this object started (tests: a crash of the machine is not what they
            test; committed data still survives the server process dying).
    """

    def __init__(self, *, fast: bool = False) -> None:
        self._fast = fast
        self._server: Any = None
        self._directory: Path | None = None
        self.url = ""

    def start(self) -> LocalPostgres:
        given = os.environ.get(ENV_TEST_DATABASE_URL)
        if given:
            self.url = given
            return self
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): it then uses /tmp, which is fine.
            warnings.simplefilter("ignore")
            import pgserver

            # Directly under the system temp dir: pgserver opens the path's parents to its unprivileged user.
            self._directory = Path(tempfile.mkdtemp(prefix="agentwrit-pg-"))
            self._server = pgserver.get_server(self._directory / "data", cleanup_mode="stop")
        self.url = str(self._server.get_uri())
        if self._fast:
            self.execute("ALTER SYSTEM SET fsync = off", "ALTER SYSTEM SET synchronous_commit = off")
            self.execute("SELECT pg_reload_conf()")
        return self

    def execute(self, *statements: str) -> None:
        """Run statements as the server's administrator (autocommit)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def create_database(self, prefix: str = "agentwrit") -> str:
        """A new, empty database; returns its URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        self.execute(f"CREATE DATABASE {name}")
        return with_database(self.url, name)

    @contextlib.contextmanager
    def database(self, prefix: str = "agentwrit") -> Iterator[str]:
        """A new, empty database for the ``with`` block (dropped after it); yields its URL."""
        url = self.create_database(prefix)
        try:
            yield url
        finally:
            self.drop_database(url)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        if name.isidentifier():
            self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server.cleanup()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
