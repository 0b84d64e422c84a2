"""``current_credential()``: the running tool call's credential, for code that cannot take a parameter.

Tools that want their credential simply declare a ``credential`` parameter. Code deeper down (an HTTP client
hook, a repository class) can ask for it here instead of having it passed through every layer. A context
variable keeps concurrent calls apart: each asyncio task and each worker thread sees only its own call's
credential, and nothing outside a tool call sees any.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..client import AsyncCredential, Credential
from ..errors import ConfigurationError

__all__ = ["current_credential"]

AnyCredential = Credential | AsyncCredential

CURRENT: ContextVar[AnyCredential | None] = ContextVar("agentwrit_tools_current_credential", default=None)


def current_credential() -> Credential | AsyncCredential:
    """The credential of the tool call running in this context.

    Raises:
        ConfigurationError: called outside a tool body run by a task.
    """
    credential = CURRENT.get()
    if credential is None:
        raise ConfigurationError(
            "no tool call is running here: current_credential() works only inside a tool run by task.call/acall"
        )
    return credential
