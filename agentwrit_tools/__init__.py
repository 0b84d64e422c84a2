"""agentwrit-tools: one tool call, one credential.

Every tool call an LLM agent makes gets a fresh, exactly-scoped, short-lived AgentWrit credential that dies the
moment the call returns.
"""

from __future__ import annotations

from .errors import AgentWritError, ConfigurationError, ScopeError, UnsafeArgumentError

__all__ = [
    "AgentWritError",
    "ConfigurationError",
    "ScopeError",
    "UnsafeArgumentError",
    "__version__",
]

__version__ = "0.1.0"
