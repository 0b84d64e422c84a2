"""WAL checkpoints in a background thread, so no request waits for one.

In WAL mode every commit appends pages to the ``-wal`` file; a *checkpoint* copies them back into the database
and syncs it to disk. Left to SQLite, the connection that commits the transaction pushing the WAL past
``wal_autocheckpoint`` pages runs the checkpoint inside that commit — here one request in about twenty
mint+release cycles, which then took 5-6 ms longer than the others: most of the p99.

A :class:`Checkpointer` owns a second connection, used for nothing but ``PRAGMA wal_checkpoint(PASSIVE)`` a few
times a second. PASSIVE never waits for, or blocks, the request connection: it copies what it can and tries
again later. Durability is unchanged — a commit is durable once it is in the WAL, checkpointed or not. The
request connection keeps a much larger ``wal_autocheckpoint`` (:data:`SAFETY_PAGES`) as a safety net, so the
WAL stays bounded even if this thread could not keep up.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["SAFETY_PAGES", "Checkpointer"]

logger = logging.getLogger("agentwrit_tools.broker")

SAFETY_PAGES = 16_000  # ~64 MiB of WAL with 4 KiB pages before a commit checkpoints by itself
INTERVAL = 0.2  # seconds between background checkpoints


class Checkpointer:
    """Checkpoints the WAL of ``path`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, path: Path, *, interval: float = INTERVAL) -> None:
        self._path = path
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentwrit-wal-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the thread (one last checkpoint runs on the way out)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self._path), isolation_level=None, timeout=0.0, check_same_thread=False)
        except sqlite3.Error as exc:
            logger.warning("WAL checkpoints stay with the commits: %s", type(exc).__name__)
            return
        try:
            while True:
                stopping = self._stopping.wait(self._interval)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or locked: the next round will do it
                    logger.debug("background WAL checkpoint skipped: %s", type(exc).__name__)
                if stopping:
                    return
        finally:
            conn.close()
