"""Files that hold the broker's secrets are the broker's alone: created 0600, refused when others can reach them.

The database holds the signing key (unless a keyring seals it), hashed secrets and the audit log; the PEM file,
when used, holds the signing key. Anyone who can read either can mint admin tokens, so:

* a file the broker creates is created with mode 0600 — the database before SQLite opens it, so its ``-wal`` and
  ``-shm`` companions, which SQLite creates with the database's mode, are 0600 too (and tightened after opening,
  whatever the umask);
* an existing file that grants anything to group or others stops the start with one line naming it, unless the
  operator asks the broker to fix it (``--fix-permissions`` / ``fix_permissions=True``).

POSIX only: on Windows, where modes do not describe access, nothing is checked.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["SQLITE_COMPANIONS", "check_private", "create_private", "db_files", "tighten"]

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
_POSIX = os.name == "posix"


def db_files(db_path: Path) -> list[Path]:
    """The database file and the companions SQLite may create beside it."""
    return [db_path, *(db_path.with_name(db_path.name + suffix) for suffix in SQLITE_COMPANIONS)]


def check_private(paths: Iterable[Path], *, fix: bool) -> None:
    """Refuse (or, with ``fix``, tighten to 0600) every existing file in ``paths`` that group or others can reach.

    Raises:
        ConfigurationError: such a file and no ``fix``; or the fix itself failed.
    """
    if not _POSIX:
        return
    for path in paths:
        try:
            mode = path.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise ConfigurationError(f"cannot inspect {path}: {exc.strerror}") from None
        if not mode & _OTHERS:
            continue
        if not fix:
            raise ConfigurationError(
                f"{path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); it holds secrets: "
                "chmod 600 it, or start with --fix-permissions"
            )
        try:
            path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
        except OSError as exc:
            raise ConfigurationError(f"cannot change the mode of {path}: {exc.strerror}") from None


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist; True when this call created it.

    False also when it cannot be created: opening it next reports that in the database's own terms.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


def tighten(paths: Iterable[Path]) -> None:
    """Take group and other permissions off files the broker itself just created (best effort)."""
    if not _POSIX:
        return
    for path in paths:
        try:
            mode = path.stat().st_mode
            if mode & _OTHERS:
                path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
        except OSError:
            continue
