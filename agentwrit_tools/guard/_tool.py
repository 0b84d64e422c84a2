"""Declaring a tool: ``@scoped_tool("read:records:{patient_id}")`` and friends.

A tool is a function plus the scope template(s) it needs. Everything is checked when it is declared — not on
the first call in production: the templates parse, every placeholder names an argument whose type can form an
identifier, the name is one every model API accepts, and a timeout does not outlast the credential's TTL.

A tool with no template is a :class:`ConfigurationError`, never "needs no scope": refusing by default is the
point (a bare ``@scoped_tool`` is the most likely way to forget it).

The resulting :class:`ScopedTool` is not directly callable: running the body without a credential is exactly
what the guard exists to prevent. Call it through a task (``task.call(tool, {...})``); unit-test the body
itself through :attr:`ScopedTool.fn`.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, overload

from typing_extensions import deprecated

from .._audience import resource_problem
from ..errors import ConfigurationError, ScopeError
from ..scopes import ScopeTemplate, render_scopes
from ._jsonschema import SchemaSignature
from ._schema import Bound, ToolSignature, build_signature

__all__ = ["ScopedTool", "scoped_tool", "wrap_tool"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HOW = 'pass the scope it needs, e.g. @scoped_tool("read:records:{patient_id}")'


def _templates(scope: object, tool: str) -> tuple[ScopeTemplate, ...]:
    items: list[object] = [scope] if isinstance(scope, str) else list(scope) if isinstance(scope, Sequence) else []
    if not items or not all(isinstance(item, str) for item in items):
        raise ConfigurationError(
            f"tool {tool!r}: the scope must be a template string or a non-empty list of them; {_HOW}"
        )
    compiled = []
    for item in items:
        try:
            compiled.append(ScopeTemplate.compile(str(item)))
        except ScopeError as exc:
            raise ConfigurationError(f"tool {tool!r}: {exc}") from exc
    return tuple(dict.fromkeys(compiled))


def _is_async(fn: Callable[..., Any]) -> bool:
    # A callable object is async when its __call__ is.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def _positive_int(value: object, what: str, tool: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"tool {tool!r}: {what} must be a positive whole number of seconds")
    return value


def _audience(value: object, tool: str) -> str | None:
    if value is None:
        return None
    problem = resource_problem(value)
    if problem is not None:
        raise ConfigurationError(f"tool {tool!r}: audience: {problem}")
    return str(value)


def _positive_float(value: object, what: str, tool: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"tool {tool!r}: {what} must be a positive number of seconds")
    return float(value)


class ScopedTool:
    """A function that runs only through a task, with a credential scoped to exactly its arguments.

    Build it with :func:`scoped_tool`, :func:`wrap_tool` or :meth:`ScopedTool.wrap`.

    Attributes:
        name: the name the model calls it by (``[A-Za-z0-9_-]{1,64}``).
        description: what the model is told it does (the docstring's text before its sections, by default).
        templates: the compiled scope templates.
        ttl: the credential's lifetime limit in seconds (None: the task's default).
        timeout: seconds the body may run (None: no limit).
        audience: the resource URL every credential of this tool is bound to (its verified ``aud`` must hold
            it), or None.
        approval: every call needs a person's yes before its credential is minted (see
            :meth:`Policy.with_approval <agentwrit_tools.guard.Policy.with_approval>`).
        is_async: True for ``async def`` tools.
        takes_credential: the function has a ``credential`` parameter.
        fn: the original callable (call it yourself only in unit tests of the body).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        scope: str | Sequence[str],
        ttl: int | None = None,
        timeout: float | None = None,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        audience: str | None = None,
        approval: bool = False,
    ) -> None:
        if isinstance(fn, ScopedTool):
            raise ConfigurationError(f"{fn.name!r} is already a scoped tool")
        if not callable(fn):
            raise ConfigurationError(f"a tool must be a function, not {type(fn).__name__}")
        tool_name = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(tool_name, str) or not _NAME.fullmatch(tool_name):
            raise ConfigurationError(
                f"tool name {tool_name!r} must be 1-64 ASCII letters, digits, '_' or '-' (pass name=...)"
            )
        self.name: str = tool_name
        self.templates = _templates(scope, tool_name)
        self.ttl = _positive_int(ttl, "ttl", tool_name)
        self.timeout = _positive_float(timeout, "timeout", tool_name)
        if self.ttl is not None and self.timeout is not None and self.timeout > self.ttl:
            raise ConfigurationError(
                f"tool {tool_name!r}: timeout ({self.timeout:g} s) exceeds ttl ({self.ttl} s): the credential "
                "would die while the tool is still allowed to run"
            )
        if description is not None and not isinstance(description, str):
            raise ConfigurationError(f"tool {tool_name!r}: description must be a string")
        self.audience = _audience(audience, tool_name)
        if not isinstance(approval, bool):
            raise ConfigurationError(f"tool {tool_name!r}: approval must be True or False")
        self.approval = approval
        self.fn = fn
        self.is_async = _is_async(fn)
        self._signature: ToolSignature | SchemaSignature
        if parameters is None:
            self._signature = build_signature(fn, tool=tool_name, description=description)
        else:
            self._signature = SchemaSignature(fn, parameters, tool=tool_name, description=description)
        self._signature.check_templates(self.templates, tool_name)
        self.description: str = self._signature.description
        self.takes_credential = self._signature.takes_credential
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    @classmethod
    def wrap(
        cls,
        fn: Callable[..., Any],
        *,
        scope: str | Sequence[str],
        ttl: int | None = None,
        timeout: float | None = None,
        name: str | None = None,
        description: str | None = None,
        approval: bool = False,
    ) -> ScopedTool:
        """Make an existing function a tool without decorating its definition."""
        return cls(fn, scope=scope, ttl=ttl, timeout=timeout, name=name, description=description, approval=approval)

    @classmethod
    def from_schema(
        cls,
        fn: Callable[..., Any],
        parameters: Mapping[str, Any],
        *,
        name: str,
        scope: str | Sequence[str],
        description: str | None = None,
        ttl: int | None = None,
        timeout: float | None = None,
        audience: str | None = None,
        approval: bool = False,
    ) -> ScopedTool:
        """A tool described by the JSON schema of its arguments rather than by ``fn``'s signature.

        For tools that come from elsewhere (an MCP server, an Agents SDK ``FunctionTool``). ``fn`` is called as
        ``fn(arguments=<validated dict>)``, with ``credential=`` too when it declares that parameter; the
        arguments are validated against ``parameters`` (see :mod:`._jsonschema`).
        """
        return cls(
            fn,
            scope=scope,
            ttl=ttl,
            timeout=timeout,
            name=name,
            description=description,
            parameters=parameters,
            audience=audience,
            approval=approval,
        )

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments the model passes (``credential`` is never in it). A fresh copy."""
        return copy.deepcopy(self._signature.parameters)

    @property
    def scope_templates(self) -> tuple[str, ...]:
        """The templates as written."""
        return tuple(t.template for t in self.templates)

    def bind(self, arguments: Mapping[str, Any] | str | None) -> Bound:
        """Validate the model's arguments (dict or JSON text). Raises ``ArgumentProblems`` (internal)."""
        return self._signature.validate(arguments)

    def render(self, bound: Bound) -> tuple[str, ...]:
        """The exact scopes a validated call needs. Raises :class:`UnsafeArgumentError` on a hostile value."""
        return render_scopes(self.templates, bound.values)

    def call_kwargs(self, bound: Bound, credential: object) -> dict[str, Any]:
        """The keyword arguments the body is called with."""
        if self.takes_credential:
            return {**bound.kwargs, "credential": credential}
        return dict(bound.kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConfigurationError(
            f"tool {self.name!r} runs only through a task, which mints its credential: "
            f"task.call({self.name}, {{...}}) or await task.acall(...); to test the body alone, call {self.name}.fn"
        )

    def __repr__(self) -> str:
        scope = list(self.scope_templates)
        bound = f", audience={self.audience!r}" if self.audience else ""
        bound += ", approval=True" if self.approval else ""
        return f"ScopedTool(name={self.name!r}, scope={scope!r}, ttl={self.ttl}, is_async={self.is_async}{bound})"


def wrap_tool(
    fn: Callable[..., Any],
    scope: str | Sequence[str],
    *,
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
    approval: bool = False,
) -> ScopedTool:
    """Make an existing function a tool: ``wrap_tool(lookup, "read:records:{patient_id}")``."""
    return ScopedTool(fn, scope=scope, ttl=ttl, timeout=timeout, name=name, description=description, approval=approval)


@overload
def scoped_tool(
    scope: str | Sequence[str],
    /,
    *,
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
    approval: bool = False,
) -> Callable[[Callable[..., Any]], ScopedTool]: ...


@overload
@deprecated('a tool needs its scope template: @scoped_tool("read:records:{patient_id}")')
def scoped_tool(scope: Callable[..., Any], /) -> NoReturn: ...


@overload
@deprecated('a tool needs its scope template: @scoped_tool("read:records:{patient_id}")')
def scoped_tool(
    *,
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
    approval: bool = False,
) -> NoReturn: ...


def scoped_tool(
    scope: str | Sequence[str] | Callable[..., Any] | None = None,
    /,
    *,
    ttl: int | None = None,
    timeout: float | None = None,
    name: str | None = None,
    description: str | None = None,
    approval: bool = False,
) -> Callable[[Callable[..., Any]], ScopedTool]:
    """Declare a tool and the scope(s) each call needs.

    Args:
        scope: a template such as ``"read:records:{patient_id}"``, or a list of them. Each ``{name}`` is an
            argument of the function; a list argument renders one scope per element.
        ttl: the credential's lifetime limit in seconds (the task's budget may shorten it).
        timeout: seconds the body may run; then its credential is released and the call reports a timeout.
        name: the name the model calls it by (default: the function's name).
        description: what the model is told (default: the docstring's text before its sections).
        approval: every call needs a person's yes before its credential is minted; the task's policy names the
            approver (:meth:`Policy.with_approval <agentwrit_tools.guard.Policy.with_approval>`), and without one
            such calls are refused.

    Raises:
        ConfigurationError: no template (bare ``@scoped_tool`` or ``@scoped_tool()``), a malformed template, a
            placeholder that names no argument, or an invalid name, ttl or timeout.
    """
    if scope is None:
        raise ConfigurationError(f"@scoped_tool() was given no scope template; {_HOW}")
    if callable(scope) and not isinstance(scope, str):
        fn_name = getattr(scope, "__name__", "the tool")
        raise ConfigurationError(f"@scoped_tool on {fn_name!r} was used without a scope template; {_HOW}")
    templates = scope

    def decorate(fn: Callable[..., Any]) -> ScopedTool:
        return ScopedTool(
            fn, scope=templates, ttl=ttl, timeout=timeout, name=name, description=description, approval=approval
        )

    # Fail now, not at first decoration, if the templates themselves are malformed.
    _templates(templates, name or "(tool)")
    return decorate
