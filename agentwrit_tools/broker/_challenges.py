"""Extension: challenge nonces in batches — ``POST /v1/challenges {"count": n}`` → ``{"nonces": [...], ...}``.

A client that mints a credential per tool call fetches nonces ahead, so a call's registration does not wait for
its ``GET /v1/challenge``. One nonce per request would still cost the broker a request per credential; a batch of
up to :data:`MAX_BATCH` costs one. Each nonce is exactly a ``GET /v1/challenge`` nonce: single-use, valid for
``nonce_ttl`` seconds, and worth nothing without a launch token and the key that signs it.

Batches need an app's or the operator's bearer (the single-nonce endpoint needs none, as the contract says), so
nobody who cannot mint can fill the nonce table many rows per request. Expired nonces are purged in the same
transaction every so often, counted together with the single-nonce endpoint's (:func:`new_nonces`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._bodies import int_or
from ._problems import bad_request
from ._secrets import random_hex

if TYPE_CHECKING:
    from ._core import BrokerCore

__all__ = ["MAX_BATCH", "PURGE_EVERY", "issue_challenges", "new_nonces"]

MAX_BATCH = 64
PURGE_EVERY = 256  # nonces issued between two purges of the expired ones


async def new_nonces(core: BrokerCore, count: int) -> list[str]:
    """``count`` fresh single-use nonces, stored (valid ``nonce_ttl`` seconds); every :data:`PURGE_EVERY` nonces
    issued, the expired ones are purged in the same transaction (they are useless; the table stays small). Both
    ``GET /v1/challenge`` and the batches come through here."""
    nonces = [random_hex(32) for _ in range(count)]
    now = time.time()
    async with core.tx() as tx:
        await tx.insert_nonces(nonces, now + core.settings.nonce_ttl)
        before = core.challenges_issued
        core.challenges_issued += count
        if before // PURGE_EVERY != core.challenges_issued // PURGE_EVERY:
            await tx.purge("nonces", now, core.settings.purge_batch)
    return nonces


async def issue_challenges(core: BrokerCore, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/challenges``: ``count`` (1..64) single-use nonces."""
    count = int_or(body, "count", 1)
    if not 1 <= count <= MAX_BATCH:
        raise bad_request(f"field 'count' must be between 1 and {MAX_BATCH}")
    return {"nonces": await new_nonces(core, count), "expires_in": core.settings.nonce_ttl}
