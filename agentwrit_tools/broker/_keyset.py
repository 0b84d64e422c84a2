"""The signing keys a broker replica holds: the current one (it signs), and the ones it still verifies and publishes.

Keys are rows in the store (:class:`~._store.KeyRow`), so every replica signs with the same current key.
``agentwrit-tools broker keys rotate`` (:func:`rotate`) adds a new key and gives every older key a
``retire_after``: the moment every token it can have signed has expired (now + the max TTL + a grace for replicas
that have not yet switched). Until then the old key is in the JWKS and verifies its tokens; after, it verifies
nothing and housekeeping deletes it. Replicas reload the rows every :data:`REFRESH_INTERVAL` seconds
(:meth:`KeySet.refresh`), so all of them sign with the new key within that time, without a restart.

Private keys are stored sealed by the keyring (``AGENTWRIT_KEYRING_SECRET``, required on PostgreSQL); without one
(SQLite only) in base64, the file being the broker's alone. A key found unsealed while a keyring is configured is
sealed in place; a key kept in ``meta`` by brokers from before key rotation moves into the rows on first open.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ConfigurationError
from ._keyring import ENV_KEYRING_SECRET, Keyring, is_sealed
from ._keys import SigningKey
from ._settings import BrokerSettings
from ._store import KeyRow, Store, StoreUnavailable, Tx

__all__ = ["REFRESH_INTERVAL", "ROTATION_GRACE", "KeySet", "LiveKeys", "load_keys", "require_keyring", "rotate"]

logger = logging.getLogger("agentwrit_tools.broker")

REFRESH_INTERVAL = 1.0
ROTATION_GRACE = 60
_PURPOSE = "signing key"
_LEGACY_META = "signing_key"


@dataclass(frozen=True, slots=True)
class _Held:
    key: SigningKey
    retire_after: float | None


def _seal(raw: bytes, keyring: Keyring | None) -> str:
    return keyring.seal(raw, purpose=_PURPOSE) if keyring else base64.b64encode(raw).decode("ascii")


def _unsealed(value: str, keyring: Keyring | None) -> SigningKey:
    if is_sealed(value):
        if keyring is None:
            raise ConfigurationError(f"the signing key in the database is sealed: set {ENV_KEYRING_SECRET}")
        raw = keyring.open(value, purpose=_PURPOSE)
    else:
        raw = base64.b64decode(value)
    return SigningKey(Ed25519PrivateKey.from_private_bytes(raw))


def _open(row: KeyRow, keyring: Keyring | None) -> SigningKey:
    key = _unsealed(row.private, keyring)
    if key.kid != row.kid:
        raise ConfigurationError(f"the stored signing key {row.kid[:12]}… does not match its kid (damaged row?)")
    return key


def require_keyring(settings: BrokerSettings) -> Keyring | None:
    """The keyring the settings configure; on PostgreSQL there must be one (shared keys are stored sealed).

    Raises:
        ConfigurationError: PostgreSQL without ``AGENTWRIT_KEYRING_SECRET``.
    """
    if settings.database_url is not None and settings.keyring_secret is None:
        raise ConfigurationError(
            f"on PostgreSQL the signing keys are stored in the shared database: set {ENV_KEYRING_SECRET} "
            "(the same on every replica) to keep them encrypted at rest"
        )
    return Keyring(settings.keyring_secret) if settings.keyring_secret is not None else None


def new_key_row(keyring: Keyring | None, now: float) -> tuple[KeyRow, SigningKey]:
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private)
    return KeyRow(key.kid, _seal(private.private_bytes_raw(), keyring), now), key


class KeySet:
    """The keys of one replica, by ``kid``; swapped whole on refresh (readers never see half a set)."""

    def __init__(self, held: dict[str, _Held], current: SigningKey, *, fixed: bool = False) -> None:
        self._held = held
        self.current = current
        self.fixed = fixed  # a key file: nothing to refresh or rotate

    @classmethod
    def single(cls, key: SigningKey) -> KeySet:
        return cls({key.kid: _Held(key, None)}, key, fixed=True)

    def for_kid(self, kid: object, now: float) -> SigningKey | None:
        """The key to verify a token whose header names ``kid``: none for an unknown or retired key."""
        held = self._held.get(kid) if isinstance(kid, str) else None
        if held is None or (held.retire_after is not None and held.retire_after <= now):
            return None
        return held.key

    def published(self, now: float) -> list[SigningKey]:
        """What the JWKS lists: the current key first, then every key not yet retired."""
        others = [
            h.key
            for h in self._held.values()
            if h.key is not self.current and (h.retire_after is None or h.retire_after > now)
        ]
        return [self.current, *others]

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._held)

    async def refresh(self, store: Store, keyring: Keyring | None) -> KeySet:
        """The set as the store now has it (keys already held are not unsealed again)."""
        if self.fixed:
            return self
        async with store.reader() as tx:
            rows = await tx.signing_keys()
        return _build(rows, keyring, self._held)


def _build(rows: list[KeyRow], keyring: Keyring | None, known: dict[str, _Held] | None = None) -> KeySet:
    held: dict[str, _Held] = {}
    for row in rows:
        previous = (known or {}).get(row.kid)
        key = previous.key if previous is not None else _open(row, keyring)
        held[row.kid] = _Held(key, row.retire_after)
    current_rows = [row for row in rows if row.retire_after is None] or rows
    if not current_rows:
        raise ConfigurationError("the database holds no signing key")
    newest = max(current_rows, key=lambda row: row.created_at)
    return KeySet(held, held[newest.kid].key)


async def load_keys(store: Store, keyring: Keyring | None) -> KeySet:
    """The stored keys, creating the first one (or moving a pre-rotation key out of ``meta``) when there is none.

    Raises:
        ConfigurationError: a sealed key and no keyring, a keyring that does not open it, a damaged row.
    """
    async with store.transaction() as tx:
        await tx.serialize()  # replicas starting together on an empty database create one key, not one each
        rows = await tx.signing_keys()
        if not rows:
            rows = [await _first_key(tx, keyring)]
        if keyring is not None:
            rows = [await _sealed(tx, row, keyring) for row in rows]
    return _build(rows, keyring)


async def _first_key(tx: Tx, keyring: Keyring | None) -> KeyRow:
    legacy = await tx.get_meta(_LEGACY_META)
    if legacy is None:
        row, _ = new_key_row(keyring, time.time())
    else:
        key = _unsealed(legacy, keyring)
        row = KeyRow(key.kid, legacy, time.time())
        await tx.delete_meta(_LEGACY_META)
    await tx.insert_signing_key(row)
    return row


async def _sealed(tx: Tx, row: KeyRow, keyring: Keyring) -> KeyRow:
    if is_sealed(row.private):
        return row
    sealed = keyring.seal(_open(row, None).private_raw(), purpose=_PURPOSE)
    await tx.reseal_signing_key(row.kid, sealed)
    return KeyRow(row.kid, sealed, row.created_at, row.retire_after)


async def rotate(store: Store, keyring: Keyring | None, *, max_ttl: int) -> tuple[SigningKey, float]:
    """Add a new current key; every older key is published until it retires. Returns (the new key, retirement).

    ``max_ttl`` is the broker's global max TTL: no token outlives its signing by more.
    """
    now = time.time()
    retire_after = now + max_ttl + ROTATION_GRACE
    row, key = new_key_row(keyring, now)
    async with store.transaction() as tx:
        await tx.retire_signing_keys(retire_after)
        await tx.insert_signing_key(row)
    return key, retire_after


class LiveKeys:
    """A replica's current :class:`KeySet`, kept up to date with the store.

    Reloaded every :data:`REFRESH_INTERVAL` seconds (:meth:`run`), and at once when a token names a ``kid`` this
    replica does not hold (:meth:`learn`): another replica may have switched to a key rotated in a moment ago.
    Concurrent requests share one reload, and a request only relies on a reload that started after it arrived —
    the one sure to see a key the signing replica had already loaded.
    """

    def __init__(self, keys: KeySet, store: Store, keyring: Keyring | None) -> None:
        self.keys = keys
        self._store = store
        self._keyring = keyring
        self._reload: asyncio.Task[None] | None = None
        self._reload_started = 0.0

    async def _load(self) -> None:
        self.keys = await self.keys.refresh(self._store, self._keyring)

    async def learn(self, kid: object) -> bool:
        """Reload if ``kid`` is unknown here; True when it is known (and usable) afterwards."""
        if self.keys.fixed or not isinstance(kid, str) or not 0 < len(kid) <= 64:
            return False
        arrived = time.monotonic()
        while True:
            reload = self._reload
            if reload is None or reload.done():
                self._reload_started = time.monotonic()
                reload = self._reload = asyncio.get_running_loop().create_task(self._load())
            started_after = self._reload_started >= arrived
            await asyncio.shield(reload)
            if started_after:
                break
        return self.keys.for_kid(kid, time.time()) is not None

    async def run(self) -> None:
        """Reload every :data:`REFRESH_INTERVAL` seconds until cancelled."""
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                await self._load()
            except (StoreUnavailable, ConfigurationError) as exc:
                logger.warning("could not refresh the signing keys: %s", exc)
