"""Advisory 2: the signing key readable by any local user.

The database (and its ``-wal``/``-shm``) held the raw Ed25519 signing key in a file created 0644: any local user
could read it and mint admin tokens. Files holding secrets are now created 0600, a broker refuses to start on one
that others can reach (unless told to fix it), and with ``AGENTWRIT_KEYRING_SECRET`` the key is stored sealed.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from security_support import counted

from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker
from agentwrit_tools.broker._serve import startup_warnings
from agentwrit_tools.cli import main
from agentwrit_tools.errors import ConfigurationError

SECRET = "correct horse battery staple"


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _companions(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _raw_key(running: Any) -> bytes:
    return bytes(running.core.key.private_raw())


def _leaks(files: list[Path], raw: bytes) -> list[str]:
    """Files holding the raw key or its base64 spelling."""
    needles = (raw, base64.b64encode(raw))
    return [f.name for f in files if f.exists() and any(n in f.read_bytes() for n in needles)]


def test_a_database_others_can_read_is_refused_then_fixed_on_request(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    with EmbeddedBroker(db_path=db):
        pass
    db.chmod(0o644)  # what an older broker, a copy or a restored backup leaves behind
    with pytest.raises(ConfigurationError) as refused:
        EmbeddedBroker(db_path=db).start()
    message = str(refused.value)
    assert "\n" not in message
    assert str(db) in message
    assert "--fix-permissions" in message
    assert _mode(db) == 0o644  # nothing touched
    counted("at-rest", "refused")
    with EmbeddedBroker(db_path=db, settings=BrokerSettings(fix_permissions=True)) as running:
        assert httpx.get(f"{running.url}/v1/health").status_code == 200
    assert _mode(db) == 0o600
    counted("at-rest", "served")


def test_the_cli_refuses_a_readable_database_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shared.db"
    with EmbeddedBroker(db_path=db):
        pass
    db.with_name("shared.db-wal").write_bytes(b"")
    db.with_name("shared.db-wal").chmod(0o604)
    monkeypatch.setenv("AGENTWRIT_ADMIN_SECRET", SECRET)
    assert main(["broker", "serve", "--db", str(db), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "shared.db-wal" in err
    assert "--fix-permissions" in err
    counted("at-rest", "refused")


def test_a_new_database_and_its_wal_and_shm_are_private_whatever_the_umask(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    with _umask(0o022), EmbeddedBroker(db_path=db) as running:
        assert httpx.post(f"{running.url}/v1/admin/auth", json={"secret": running.admin_secret}).status_code == 200
        files = [path for path in _companions(db) if path.exists()]
        assert len(files) == 3, files  # WAL mode: all three exist while the broker runs
        assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
    counted("at-rest", "served")


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    with EmbeddedBroker(db_path=tmp_path / "a.db", settings=BrokerSettings(signing_key_path=key)):
        pass
    assert _mode(key) == 0o600
    key.chmod(0o640)
    with pytest.raises(ConfigurationError, match=r"signing\.pem"):
        EmbeddedBroker(db_path=tmp_path / "a.db", settings=BrokerSettings(signing_key_path=key)).start()
    counted("at-rest", "refused")


def test_with_a_keyring_the_signing_key_is_stored_sealed(tmp_path: Path) -> None:
    db = tmp_path / "sealed.db"
    sealed = BrokerSettings(keyring_secret=SECRET)
    with EmbeddedBroker(db_path=db, settings=sealed) as running:
        raw, kid = _raw_key(running), running.core.key.kid
        token = httpx.post(f"{running.url}/v1/admin/auth", json={"secret": running.admin_secret}).json()
    assert _leaks(_companions(db), raw) == []  # whoever copies the files holds no key
    # The attack on a copy: without the secret, or with a wrong one, the broker does not start (one line each).
    for settings, words in (
        (BrokerSettings(), "AGENTWRIT_KEYRING_SECRET"),
        (BrokerSettings(keyring_secret="not the secret"), "does not open"),
    ):
        with pytest.raises(ConfigurationError) as refused:
            EmbeddedBroker(db_path=db, settings=settings).start()
        assert words in str(refused.value)
        assert "\n" not in str(refused.value)
        counted("at-rest", "refused")
    # The operator, with the secret: same key, earlier tokens still good.
    with EmbeddedBroker(db_path=db, settings=sealed) as running:
        assert running.core.key.kid == kid
        check = httpx.post(f"{running.url}/v1/token/validate", json={"token": token["access_token"]}).json()
        assert check["valid"] is True
    counted("at-rest", "served")


def test_a_key_stored_in_the_clear_is_sealed_once_a_keyring_is_set(tmp_path: Path) -> None:
    db = tmp_path / "upgrade.db"
    with EmbeddedBroker(db_path=db) as running:
        raw = _raw_key(running)
    assert _leaks(_companions(db), raw) == ["upgrade.db"]  # before: in the clear, as the advisory found it
    with EmbeddedBroker(db_path=db, settings=BrokerSettings(keyring_secret=SECRET)) as running:
        assert _raw_key(running) == raw
    assert _leaks(_companions(db), raw) == []
    counted("at-rest", "refused")
    with EmbeddedBroker(db_path=db, settings=BrokerSettings(keyring_secret=SECRET)) as running:
        assert _raw_key(running) == raw
    counted("at-rest", "served")


def test_with_a_keyring_the_key_file_is_an_encrypted_pem(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    settings = BrokerSettings(signing_key_path=key, keyring_secret=SECRET)
    with EmbeddedBroker(db_path=tmp_path / "b.db", settings=settings) as running:
        raw = _raw_key(running)
    assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    assert _leaks([key], raw) == []
    with pytest.raises(ConfigurationError, match="encrypted"):
        EmbeddedBroker(db_path=tmp_path / "b.db", settings=BrokerSettings(signing_key_path=key)).start()
    counted("at-rest", "refused")
    with EmbeddedBroker(db_path=tmp_path / "b.db", settings=settings) as running:
        assert _raw_key(running) == raw
    counted("at-rest", "served")


def test_serving_beyond_loopback_without_a_keyring_warns() -> None:
    assert startup_warnings(BrokerSettings(host="0.0.0.0")) != []  # noqa: S104 - a setting, nothing is bound
    assert "AGENTWRIT_KEYRING_SECRET" in startup_warnings(BrokerSettings(host="10.1.2.3"))[0]
    counted("at-rest", "refused")
    for settings in (
        BrokerSettings(host="127.0.0.1"),
        BrokerSettings(host="::1"),
        BrokerSettings(host="localhost"),
        BrokerSettings(host="0.0.0.0", keyring_secret=SECRET),  # noqa: S104
    ):
        assert startup_warnings(settings) == [], settings
    counted("at-rest", "served")
