"""Pydantic models of the wire contract's bodies.

Public models (returned to callers) are frozen and hide secret-bearing fields from ``repr``; the private ones
only exist to validate broker answers before a flow trusts them. ``extra="ignore"`` everywhere on input: a newer
broker may add fields, and that must not break us.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._claims import Claims, DelegationRecord

__all__ = [
    "AppRecord",
    "AuditEvent",
    "AuditPage",
    "DeregisteredApp",
    "Health",
    "LaunchPolicy",
    "LaunchToken",
    "Problem",
    "RevocationLevel",
    "RevokeResult",
]

RevocationLevel = Literal["token", "agent", "task", "chain"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Problem(_Frozen):
    """An RFC 7807 problem as the broker sends it (every contract field; absent ones are None/empty)."""

    type: str = "about:blank"
    title: str = ""
    status: int
    detail: str = ""
    instance: str = ""
    error_code: str | None = None
    request_id: str | None = None
    hint: str | None = None


class Health(_Frozen):
    """``GET /v1/health``."""

    status: str
    version: str = ""
    uptime: float = 0
    db_connected: bool = False
    audit_events_count: int = 0


class AppRecord(_Frozen):
    """An app as the operator API returns it. ``client_secret`` is only present on creation, never in repr."""

    app_id: str
    client_id: str = ""
    client_secret: str | None = Field(default=None, repr=False)
    name: str = ""
    scopes: tuple[str, ...] = ()
    token_ttl: int | None = None
    status: str | None = None


class DeregisteredApp(_Frozen):
    """``DELETE /v1/admin/apps/{id}``: the app is inactive from ``deregistered_at`` on."""

    app_id: str
    status: str
    deregistered_at: str = ""


class LaunchPolicy(_Frozen):
    """What a launch token allows; ``task_id`` (extension) is the task it is bound to, when the broker bound it."""

    allowed_scope: tuple[str, ...]
    max_ttl: int
    task_id: str | None = None


class LaunchToken(_Frozen):
    """A launch token (64 hex). The value is a bearer secret: kept out of repr."""

    launch_token: str = Field(repr=False)
    expires_at: str
    policy: LaunchPolicy


class RevokeResult(_Frozen):
    revoked: bool
    level: str
    target: str
    count: int = 0


class AuditEvent(_Frozen):
    """One hash-chained audit event, every field exactly as the broker returned it."""

    id: str
    timestamp: str
    event_type: str
    agent_id: str = ""
    task_id: str = ""
    orch_id: str = ""
    detail: str = ""
    resource: str = ""
    outcome: str = ""
    deleg_depth: int = 0
    deleg_chain_hash: str = ""
    bytes_transferred: int = 0
    hash: str = ""
    prev_hash: str = ""


class AuditPage(_Frozen):
    events: tuple[AuditEvent, ...]
    total: int
    offset: int = 0
    limit: int = 0


# ---- private: broker answers validated before use --------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TokenGrant(_Wire):
    """``/v1/app/auth``, ``/v1/admin/auth``, ``/v1/token/renew``: a bearer token and its lifetime."""

    access_token: str = Field(min_length=1, repr=False)
    expires_in: float = Field(gt=0)


class Challenge(_Wire):
    nonce: str = Field(pattern=r"^[0-9a-fA-F]+$")
    expires_in: float = 30


class ChallengeBatch(_Wire):
    """Extension ``POST /v1/challenges``."""

    nonces: list[str] = Field(min_length=1, max_length=64)
    expires_in: float = Field(gt=0)


class LaunchRevocation(_Wire):
    """Extension ``POST /v1/launch-tokens/revoke``."""

    revoked: bool
    count: int = Field(ge=0)


class Registration(_Wire):
    agent_id: str = Field(min_length=1)
    access_token: str = Field(min_length=1, repr=False)
    expires_in: float = 0


class Delegated(_Wire):
    access_token: str = Field(min_length=1, repr=False)
    expires_in: float = 0
    delegation_chain: tuple[DelegationRecord, ...] = ()

    @field_validator("delegation_chain", mode="before")
    @classmethod
    def _none_chain(cls, value: Any) -> Any:
        return () if value is None else value


class Validation(_Wire):
    valid: bool
    claims: Claims | None = None
    error: str | None = None


class AppList(_Wire):
    apps: tuple[AppRecord, ...] = ()
    total: int = 0


class Jwk(_Wire):
    kty: str = ""
    crv: str = ""
    x: str = ""
    kid: str = ""
    alg: str | None = None
    use: str | None = None


class Jwks(_Wire):
    keys: tuple[Jwk, ...]


class RevocationEntry(_Wire):
    seq: int
    level: str
    target: str
    revoked_at: str = ""
    exp: int | None = None  # extension: the revoked token's expiry, on token entries when the broker knows it


class RevocationPage(_Wire):
    revocations: tuple[RevocationEntry, ...]
    next_after: int
    has_more: bool
