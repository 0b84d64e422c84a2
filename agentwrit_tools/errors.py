"""The one exception hierarchy of agentwrit-tools.

::

    AgentWritError                      root: catch this to catch everything we raise
    ├── ScopeError (ValueError)         a scope string or template is malformed
    │   └── UnsafeArgumentError         a model-chosen value would widen a rendered scope
    └── ConfigurationError              the library or a tool is set up wrongly (caught at declaration time)

Messages never carry a token, a secret or the text of a foreign exception: they are safe to log. What a
model sees is built by an explicit policy elsewhere, never from ``str(exc)``.
"""

from __future__ import annotations

__all__ = [
    "AgentWritError",
    "ConfigurationError",
    "ScopeError",
    "UnsafeArgumentError",
]


class AgentWritError(Exception):
    """Root of every error raised by agentwrit-tools."""


class ConfigurationError(AgentWritError):
    """The library, a broker setting or a tool declaration is wrong; fix the code or the settings."""


class ScopeError(AgentWritError, ValueError):
    """A scope or scope template does not follow ``action:resource:identifier``.

    Attributes:
        scope: the offending text (a scope or template; never a token).
    """

    def __init__(self, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


class UnsafeArgumentError(ScopeError):
    """A value interpolated into a scope template is not a plain identifier.

    Raised instead of rendering, so a model cannot ask for ``read:records:*`` by choosing ``*`` as an argument.

    Attributes:
        argument: the name of the argument (never its value, which may be hostile or huge).
        template: the template being rendered.
        reason: a short, fixed description of why the value was refused.
    """

    def __init__(self, *, argument: str, template: str, reason: str) -> None:
        super().__init__(
            f"argument {argument!r} cannot be used in scope template {template!r}: {reason}",
            scope=template,
        )
        self.argument = argument
        self.template = template
        self.reason = reason
