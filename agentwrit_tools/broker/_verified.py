"""Tokens this broker already knows to be authentic, so presenting one again costs a lookup, not an Ed25519 check.

Two kinds of token are presented over and over, or right after they were made: an app's token (once per launch
token it asks for, all day long) and an agent's per-call token (issued by ``/v1/register`` and presented to
``/v1/token/release`` a few milliseconds later). Both were either signed by this very process or already passed
the full check of :func:`._jwt.verify`, so their signature, header, issuer, audience and claim shapes cannot have
changed since — the key and the settings are fixed for the life of the process. What *can* change is checked on
every use, cached or not: ``exp``/``nbf`` here (:func:`._jwt.check_lifetime`), revocation by the caller.

Entries are keyed by the exact token text, so a hit proves the presenter holds that very string. The cache is a
bounded LRU; a miss just means the full check runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["VerifiedTokens"]


class VerifiedTokens:
    """Claims of authentic tokens by token text, most recently used last.

    Used only from the broker's event-loop thread (like everything in :class:`._core.BrokerCore`), so no lock.
    """

    def __init__(self, size: int = 2048) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._size = size
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._claims)

    def get(self, token: str) -> dict[str, Any] | None:
        """A copy of the claims (callers may not share a dict), or None when ``token`` is not known."""
        claims = self._claims.get(token)
        if claims is None:
            return None
        self._claims.move_to_end(token)
        return dict(claims)

    def add(self, token: str, claims: dict[str, Any]) -> None:
        """Remember ``token`` (signed here, or fully verified) with its claims."""
        self._claims[token] = dict(claims)
        self._claims.move_to_end(token)
        while len(self._claims) > self._size:
            self._claims.popitem(last=False)
