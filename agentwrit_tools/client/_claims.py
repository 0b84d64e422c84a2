"""The claims of a verified AgentWrit token.

One model whether the token was verified locally (JWKS) or by the broker (``POST /v1/token/validate``), so code
that gates on claims never cares how they were obtained. Frozen: claims are facts about a signed token.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["Claims", "Confirmation", "DelegationRecord"]


def _none_to_empty(value: Any) -> Any:
    return () if value is None else value


class DelegationRecord(BaseModel):
    """One hop of a delegation chain: who delegated, holding which scope, when (broker-signed)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    agent: str
    scope: tuple[str, ...] = ()
    delegated_at: str = ""
    signature: str | None = None

    _empty_scope = field_validator("scope", mode="before")(_none_to_empty)


class Confirmation(BaseModel):
    """The ``cnf`` claim of a key-bound token (RFC 7800, RFC 9449): ``jkt`` is the RFC 7638 thumbprint of the key
    that must sign a proof with every request that presents the token (see :mod:`agentwrit_tools.pop`)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    jkt: str | None = None


class Claims(BaseModel):
    """Claims of a token whose signature, expiry and (where checked) revocation status were verified.

    ``scope`` is a tuple (compare with ``set(...)`` or a tuple); ``aud`` is always a tuple, even when the token
    carried a single string; ``task_id``/``orch_id`` are empty for admin and app tokens. Unknown claims are kept
    (``model_extra``) so a newer broker's additions are not silently lost.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    iss: str = ""
    sub: str
    aud: tuple[str, ...] = ()
    exp: int
    nbf: int | None = None
    iat: int | None = None
    jti: str
    scope: tuple[str, ...] = ()
    task_id: str = ""
    orch_id: str = ""
    sid: str | None = None
    delegation_chain: tuple[DelegationRecord, ...] = ()
    chain_hash: str | None = None
    cnf: Confirmation | None = None

    _empty = field_validator("scope", "delegation_chain", mode="before")(_none_to_empty)

    @field_validator("aud", mode="before")
    @classmethod
    def _aud_as_tuple(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        return value

    @property
    def expires_at(self) -> datetime:
        """``exp`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.exp, tz=timezone.utc)

    @property
    def chain_root(self) -> str | None:
        """The agent that started the delegation chain (the target of a ``chain``-level revocation)."""
        return self.delegation_chain[0].agent if self.delegation_chain else None

    @property
    def jkt(self) -> str | None:
        """The thumbprint of the key this token is bound to (``cnf.jkt``), or None for a bearer token."""
        return self.cnf.jkt if self.cnf is not None else None

    @property
    def depth(self) -> int:
        """Delegation depth: 0 for a directly registered agent."""
        return len(self.delegation_chain)
