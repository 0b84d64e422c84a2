"""The database side of the CLI: ``--db`` as a file or a PostgreSQL URL, ``broker migrate``, ``broker keys rotate``;
every mistake one line on stderr, exit code 2, never the URL's password."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support import KEYRING_SECRET

from agentwrit_tools.broker._migrations import LATEST
from agentwrit_tools.cli import main

PASSWORD = "hunter2-not-for-logs"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AGENTWRIT_ADMIN_SECRET",
        "AA_ADMIN_SECRET",
        "AGENTWRIT_KEYRING_SECRET",
        "AGENTWRIT_DATABASE_URL",
        "AA_DB_PATH",
        "AA_SIGNING_KEY_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AA_ADMIN_SECRET", "s")


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert PASSWORD not in lines[0]
    return lines[0]


def test_an_unreachable_database_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTWRIT_KEYRING_SECRET", KEYRING_SECRET)
    url = f"postgresql://broker:{PASSWORD}@127.0.0.1:9/agentwrit"  # nothing listens on the discard port
    assert main(["broker", "serve", "--db", url, "--port", "0"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cannot connect to the database postgresql://broker:***@127.0.0.1:9/agentwrit" in line


def test_a_malformed_database_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTWRIT_KEYRING_SECRET", KEYRING_SECRET)
    assert main(["broker", "migrate", "--db", f"postgresql://u:{PASSWORD}@localhost/x?no_such_option=1"]) == 2
    assert "cannot connect to the database" in _one_line(capsys.readouterr().err)
    monkeypatch.setenv("AGENTWRIT_DATABASE_URL", f"mysql://u:{PASSWORD}@localhost/x")
    assert main(["broker", "serve", "--port", "0"]) == 2
    assert "must start with postgresql://" in _one_line(capsys.readouterr().err)


def test_postgresql_without_a_keyring_secret_refuses_to_start(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["broker", "serve", "--db", postgres_url, "--port", "0"]) == 2
    assert "set AGENTWRIT_KEYRING_SECRET" in _one_line(capsys.readouterr().err)
    assert main(["broker", "keys", "rotate", "--db", postgres_url]) == 2
    assert "set AGENTWRIT_KEYRING_SECRET" in _one_line(capsys.readouterr().err)


def test_migrate_brings_a_postgresql_database_to_the_latest_version(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTWRIT_DATABASE_URL", postgres_url)
    assert main(["broker", "migrate"]) == 0
    assert main(["broker", "migrate"]) == 0  # again: nothing to do
    out = capsys.readouterr().out
    assert out.count(f"schema version {LATEST} (up to date)") == 2
    assert "***" in out or ":@" not in out  # a password, if any, is never printed


def _migrated(conn: sqlite3.Connection, db: Path, capsys: pytest.CaptureFixture[str]) -> sqlite3.Connection:
    """Close the old-schema database ``conn`` wrote, migrate it through the CLI, and open it again."""
    conn.commit()
    conn.close()
    db.chmod(0o600)
    assert main(["broker", "migrate", "--db", str(db)]) == 0
    assert f"schema version {LATEST}" in capsys.readouterr().out
    return sqlite3.connect(db)


def test_migrate_upgrades_a_sqlite_database_of_the_first_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentwrit_tools.broker._migrations import MIGRATIONS

    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0].sqlite)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO agents VALUES ('spiffe://d/agent/o/t/1', 'k', 'o', 't', '[]', NULL, 'a', '2026-01-02T03:04:05.5Z')"
    )
    conn = _migrated(conn, db, capsys)
    try:
        assert conn.execute("SELECT registered_epoch FROM agents").fetchone()[0] == 1767323045
        assert conn.execute("SELECT COUNT(*) FROM signing_keys").fetchone()[0] == 0
    finally:
        conn.close()


def test_migrate_moves_key_bindings_kept_in_their_own_table_onto_the_token_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentwrit_tools.broker._migrations import MIGRATIONS

    db = tmp_path / "v2.db"
    conn = sqlite3.connect(db)
    for migration in MIGRATIONS[:2]:
        conn.executescript(migration.sqlite)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
    conn.execute("CREATE TABLE token_bindings (jti TEXT PRIMARY KEY, jkt TEXT NOT NULL)")
    for jti in ("bound", "bearer"):
        conn.execute(
            "INSERT INTO tokens (jti, sub, kind, task_id, orch_id, lineage, ttl, iat, exp)"
            " VALUES (?, 's', 'agent', 't', 'o', ?, 60, 1, 61)",
            (jti, jti),
        )
    conn.execute("INSERT INTO token_bindings VALUES ('bound', 'thumb')")
    conn = _migrated(conn, db, capsys)
    try:
        assert dict(conn.execute("SELECT jti, jkt FROM tokens")) == {"bound": "thumb", "bearer": None}
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'token_bindings'").fetchone() is None
    finally:
        conn.close()


def test_keys_rotate_on_sqlite_adds_a_current_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "b.db"
    assert main(["broker", "keys", "rotate", "--db", str(db)]) == 0
    assert main(["broker", "keys", "rotate", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.count("new signing key ") == 2
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT kid, retire_after FROM signing_keys ORDER BY created_at").fetchall()
    finally:
        conn.close()
    assert len(rows) == 3  # the first key, then two rotations
    assert [retire is None for _, retire in rows] == [False, False, True]


def test_keys_rotate_refuses_a_key_kept_in_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AA_SIGNING_KEY_PATH", str(tmp_path / "key.pem"))
    assert main(["broker", "keys", "rotate", "--db", str(tmp_path / "b.db")]) == 2
    assert "kept in a file" in _one_line(capsys.readouterr().err)
    assert main(["broker", "keys", "spin"]) == 2  # argparse's own refusal of an unknown action


def test_database_urls_are_checked_and_shown_without_their_password() -> None:
    from agentwrit_tools.broker._settings import BrokerSettings, check_database_url, redact_url
    from agentwrit_tools.errors import ConfigurationError

    assert redact_url(f"postgresql://u:{PASSWORD}@db:5432/x?sslmode=require&password={PASSWORD}") == (
        "postgresql://u:***@db:5432/x"
    )
    assert redact_url("postgresql://u@db/x") == "postgresql://u@db/x"
    assert check_database_url("postgres://db/x") == "postgres://db/x"
    for bad in ("sqlite:///x.db", "db/x", "", 5):
        with pytest.raises(ConfigurationError):
            check_database_url(bad)
    with pytest.raises(ConfigurationError, match="AA_SIGNING_KEY_PATH"):
        BrokerSettings(database_url="postgresql://db/x", signing_key_path=Path("k.pem"))
    settings = BrokerSettings.from_env({"AGENTWRIT_DATABASE_URL": f"postgresql://u:{PASSWORD}@db/x"})
    assert settings.database_url is not None
    assert PASSWORD not in repr(settings)
