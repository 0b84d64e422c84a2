"""Errors of the offline stand-in model.

::

    AgentWritError
    ├── ConfigurationError
    │   └── RulesError              a rule set (Python or JSON file) is malformed; says where
    └── StandInError                the stand-in model cannot run (e.g. its port is taken)
        └── InvalidRequest          a request body the stand-in refuses; becomes an HTTP 400 in OpenAI's shape

Like the rest of the package, messages carry no token and no request text: a request may contain anything.
"""

from __future__ import annotations

from ..errors import AgentWritError, ConfigurationError

__all__ = ["InvalidRequest", "RulesError", "StandInError"]


class RulesError(ConfigurationError, ValueError):
    """A rule set is malformed: a bad regular expression, an unknown placeholder, a missing field.

    Raised when the rules are built or loaded, never while serving, so a demo fails at start-up rather than
    in the middle of a conversation. It is a :class:`ValueError` too, so validation layers that collect
    value errors (pydantic, while loading a file) can attach the location.

    Attributes:
        source: where the rules came from (a file path, ``"<json>"``), or ``""`` for rules built in Python.
        location: the path inside the rules (``rules[2].calls[0].tool``), or ``""`` when unknown.
        reason: the message without source and location.
    """

    def __init__(self, message: str, *, source: str = "", location: str = "") -> None:
        where = ": ".join(part for part in (source, location) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.location = location
        self.reason = message


class StandInError(AgentWritError):
    """The stand-in model cannot do what was asked of it (start, bind, answer)."""


class InvalidRequest(StandInError):
    """A request the stand-in refuses, the way the OpenAI API would (HTTP 400 ``invalid_request_error``).

    Attributes:
        param: the offending request field, dotted (``messages.2.tool_call_id``), when one is to blame.
        code: a short machine-readable code, when there is one.
    """

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
