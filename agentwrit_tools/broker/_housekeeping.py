"""Housekeeping: expired state is purged in bounded batches, so a broker that runs for a year stays its size.

What goes, once nothing can need it any more (``GRACE`` seconds of slack for replicas' clocks):

* nonces and launch tokens past their expiry (a replica refuses them then anyway);
* issued-token records past their ``exp`` (and their audience binding);
* ``token`` revocation rules whose token has expired (agent, task and chain rules are kept: they also refuse
  tokens issued later);
* agents registered longer ago than a session lifetime that no longer hold any token record;
* signing keys past their retirement.

The audit log is never purged: it is the record. Each batch deletes at most ``purge_batch`` rows in its own
short transaction and yields to requests before the next, so a large backlog never holds a lock for long. It
runs on SQLite and PostgreSQL alike; replicas purging at the same time just find less to delete.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ._settings import BrokerSettings
from ._store import PURGEABLE, Store, StoreUnavailable

__all__ = ["GRACE", "housekeeping_loop", "purge_expired"]

logger = logging.getLogger("agentwrit_tools.broker")

GRACE = 300


def cutoffs(settings: BrokerSettings, now: float) -> dict[str, float]:
    """For each kind, the moment before which its rows are expired for good."""
    return {
        "nonces": now,
        "launch_tokens": now,
        "tokens": now - GRACE,
        "revocations": now - GRACE,
        "agents": now - settings.session_lifetime - settings.max_ttl - GRACE,
        "signing_keys": now,
    }


async def purge_expired(store: Store, settings: BrokerSettings, now: float | None = None) -> dict[str, int]:
    """Purge everything expired, batch by batch; returns how many rows of each kind went."""
    limits = cutoffs(settings, time.time() if now is None else now)
    purged: dict[str, int] = {}
    for kind in PURGEABLE:
        total = 0
        while True:
            async with store.transaction() as tx:
                count = await tx.purge(kind, limits[kind], settings.purge_batch)
            total += count
            if count < settings.purge_batch:
                break
            await asyncio.sleep(0)  # let requests in between batches
        purged[kind] = total
    return purged


async def housekeeping_loop(store: Store, settings: BrokerSettings) -> None:
    """Purge every ``housekeeping_interval`` seconds until cancelled (never, when the interval is 0)."""
    if settings.housekeeping_interval <= 0:
        return
    while True:
        await asyncio.sleep(settings.housekeeping_interval)
        try:
            purged = await purge_expired(store, settings)
        except StoreUnavailable:
            logger.warning("housekeeping skipped: the database is unavailable")
            continue
        if any(purged.values()):
            logger.info("housekeeping purged %s", ", ".join(f"{n} {kind}" for kind, n in purged.items() if n))
