"""agentwrit-tools: one tool call, one credential.

Every tool call an LLM agent makes gets a fresh, exactly-scoped, short-lived AgentWrit credential that dies the
moment the call returns.
"""

from __future__ import annotations

from .client import (
    AsyncBroker,
    AsyncCredential,
    AsyncTaskLauncher,
    AsyncVerifier,
    Broker,
    Claims,
    Credential,
    DelegationRecord,
    Problem,
    RetryPolicy,
    TaskLauncher,
    Verifier,
)
from .errors import (
    AgentWritError,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    CredentialReleased,
    Forbidden,
    InsufficientScope,
    InvalidRequest,
    NotFound,
    ProblemError,
    ProtocolError,
    RateLimited,
    ScopeError,
    ScopeMismatch,
    ScopeViolation,
    ServerError,
    TaskBudgetExhausted,
    TokenInvalid,
    TokenRevoked,
    TransportError,
    Unauthorized,
    UnsafeArgumentError,
)

__all__ = [
    "AgentWritError",
    "AsyncBroker",
    "AsyncCredential",
    "AsyncTaskLauncher",
    "AsyncVerifier",
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "Claims",
    "ConfigurationError",
    "Credential",
    "CredentialReleased",
    "DelegationRecord",
    "Forbidden",
    "InsufficientScope",
    "InvalidRequest",
    "NotFound",
    "Problem",
    "ProblemError",
    "ProtocolError",
    "RateLimited",
    "RetryPolicy",
    "ScopeError",
    "ScopeMismatch",
    "ScopeViolation",
    "ServerError",
    "TaskBudgetExhausted",
    "TaskLauncher",
    "TokenInvalid",
    "TokenRevoked",
    "TransportError",
    "Unauthorized",
    "UnsafeArgumentError",
    "Verifier",
    "__version__",
]

__version__ = "0.1.0"
