"""Signing keys in the store: created once, sealed at rest, rotated; an old key is published until it retires."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agentwrit_tools.broker._keyring import Keyring, is_sealed
from agentwrit_tools.broker._keyset import ROTATION_GRACE, load_keys, rotate
from agentwrit_tools.errors import ConfigurationError

pytestmark = pytest.mark.anyio

KEYRING = Keyring("store-keys-test-secret")


async def _rows(store: Any) -> list[Any]:
    async with store.reader() as tx:
        return list(await tx.signing_keys())


async def test_the_first_key_is_created_once_and_stored_sealed(store: Any) -> None:
    first = await load_keys(store, KEYRING)
    again = await load_keys(store, KEYRING)
    assert again.current.kid == first.current.kid
    (row,) = await _rows(store)
    assert row.kid == first.current.kid
    assert is_sealed(row.private)
    assert first.current.private_raw().hex() not in row.private


async def test_a_wrong_keyring_secret_opens_nothing(store: Any) -> None:
    await load_keys(store, KEYRING)
    with pytest.raises(ConfigurationError, match="AGENTWRIT_KEYRING_SECRET"):
        await load_keys(store, Keyring("not the secret"))
    with pytest.raises(ConfigurationError, match="sealed"):
        await load_keys(store, None)


async def test_an_unsealed_key_is_sealed_once_a_keyring_is_configured(store: Any) -> None:
    plain = await load_keys(store, None)
    assert not is_sealed((await _rows(store))[0].private)
    sealed = await load_keys(store, KEYRING)
    assert sealed.current.kid == plain.current.kid
    assert is_sealed((await _rows(store))[0].private)


async def test_rotation_publishes_the_old_key_until_its_tokens_have_expired_then_it_verifies_nothing(
    store: Any,
) -> None:
    before = await load_keys(store, KEYRING)
    new, retire_after = await rotate(store, KEYRING, max_ttl=600)
    assert retire_after == pytest.approx(time.time() + 600 + ROTATION_GRACE, abs=5)
    after = await before.refresh(store, KEYRING)
    assert after.current.kid == new.kid != before.current.kid
    now = time.time()
    assert [k.kid for k in after.published(now)] == [new.kid, before.current.kid]
    assert after.for_kid(before.current.kid, now) is not None  # its tokens still verify
    assert after.for_kid(before.current.kid, retire_after + 1) is None  # retired: verifies nothing
    assert [k.kid for k in after.published(retire_after + 1)] == [new.kid]
    assert after.for_kid("someone-elses-kid", now) is None


async def test_retired_keys_are_purged(store: Any) -> None:
    old = await load_keys(store, KEYRING)
    await rotate(store, KEYRING, max_ttl=600)
    async with store.transaction() as tx:
        assert await tx.purge("signing_keys", time.time(), 10) == 0  # not retired yet
        assert await tx.purge("signing_keys", time.time() + 600 + ROTATION_GRACE + 5, 10) == 1
    assert old.current.kid not in {row.kid for row in await _rows(store)}
