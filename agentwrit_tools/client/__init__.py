"""The AgentWrit wire protocol, sync and async over httpx (layer 2 of the design).

One I/O-free core — flows that yield request descriptions (``_steps``, ``_protocol``, ``_session``, ``_flows``,
``_verify``, ``_admin``) — and two thin edges that send them (``_drivers``): :class:`Broker` and
:class:`AsyncBroker` differ only in how they send. Speaks ``wire-contract.md`` exactly and works against a
broker without any of the embedded broker's extensions (JWKS, revocation feed), falling back to remote
validation.
"""

from __future__ import annotations

from ._auth import CredentialAuth
from ._broker import AsyncBroker, Broker
from ._claims import Claims, Confirmation, DelegationRecord
from ._credential import AsyncCredential, Credential
from ._launch import IssuedLaunch, LaunchEnd
from ._launchers import AsyncTaskLauncher, TaskLauncher
from ._models import (
    AppRecord,
    AuditEvent,
    AuditPage,
    DeregisteredApp,
    Health,
    LaunchPolicy,
    LaunchToken,
    Problem,
    RevocationLevel,
    RevokeResult,
)
from ._operator import Admin, AsyncAdmin, AuditQuery
from ._protocol import RetryPolicy
from ._verifier import AsyncVerifier, Verifier

__all__ = [
    "Admin",
    "AppRecord",
    "AsyncAdmin",
    "AsyncBroker",
    "AsyncCredential",
    "AsyncTaskLauncher",
    "AsyncVerifier",
    "AuditEvent",
    "AuditPage",
    "AuditQuery",
    "Broker",
    "Claims",
    "Confirmation",
    "Credential",
    "CredentialAuth",
    "DelegationRecord",
    "DeregisteredApp",
    "Health",
    "IssuedLaunch",
    "LaunchEnd",
    "LaunchPolicy",
    "LaunchToken",
    "Problem",
    "RetryPolicy",
    "RevocationLevel",
    "RevokeResult",
    "TaskLauncher",
    "Verifier",
]
