"""Declaring a stage: a name, the scope it needs, and what it runs (a plain function or an LLM agent's loop).

A stage's body is called with one argument, its :class:`~agentwrit_tools.pipeline.StageContext`: the previous
stage's output as ``ctx.input``, a guard :class:`~agentwrit_tools.Task` as ``ctx.task`` (hand it to the OpenAI
or LangChain adapter to make the stage an LLM agent), and ``ctx.call``/``ctx.acall`` for tool calls made
directly. What the body returns is the next stage's input.

The scope is checked when it is declared (it must parse, and refusing by default means a stage with no scope
is a :class:`~agentwrit_tools.errors.ConfigurationError`). It may also depend on the stage's input — a response
stage that needs ``write:replies:<the ticket triage chose>``. The safe way is a template, ``"write:replies:
{ticket}"``, filled from the previous stage's output (a mapping) under the same rule as a tool's arguments: each
value must be a plain identifier, so a model-extracted ``*`` or ``a:b`` is refused before anything is minted.
A function of the input is also accepted, but its result may not hold a wildcard identifier (declare wildcards
statically), because the pipeline cannot tell which part of it a model chose. Either way a handoff can only
narrow, which the pipeline checks and the broker enforces.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ScopeError, UnsafeArgumentError
from ..guard import Policy, ScopedTool
from ..guard._validate import checked_scopes
from ..scopes import WILDCARD, ScopeTemplate, parse_scope, render_scopes

if TYPE_CHECKING:
    from ._context import StageContext

__all__ = ["Halt", "ScopeSpec", "Stage", "stage"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

ScopeSpec = str | Sequence[str] | Callable[[Any], str | Sequence[str]]
"""A scope or scope template, a list of them, or a function of the stage's input returning scopes."""


class Halt(Exception):
    """Stop the pipeline here, on purpose: nothing downstream is minted, and the run ends ``halted``.

    Raise it from a stage body (or call ``ctx.halt(reason)``), or return an instance. It is not an
    :class:`~agentwrit_tools.errors.AgentWritError`: a halt is a decision, and the run returns normally.

    Attributes:
        reason: why, in the stage author's words (it goes into the trace; keep model output out of it).
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def scopes_of(value: object, where: str) -> tuple[str, ...]:
    """Validate one scope or a list of them into a de-duplicated tuple; ConfigurationError otherwise."""
    return checked_scopes(_scope_items(value, where), where)


def _scope_items(value: object, where: str) -> list[str]:
    items: list[object] = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else []
    if not items or not all(isinstance(item, str) for item in items):
        raise ConfigurationError(f"{where}: the scope must be a scope string or a non-empty list of them")
    return [str(item) for item in items]


def _templates(value: object, where: str) -> tuple[ScopeTemplate, ...]:
    """Compile a declared scope (or list) as templates; a placeholder-free template is just the scope."""
    try:
        return tuple(ScopeTemplate.compile(item) for item in _scope_items(value, where))
    except ScopeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


@dataclass(frozen=True, eq=False)
class Stage:
    """One step of a pipeline and the authority it needs.

    Args:
        name: shown in events and errors (``[A-Za-z0-9_-]{1,64}``, unique within a pipeline).
        scope: what the stage's token holds — a scope, a list, or a function of the stage's input. It must be
            within the previous stage's (the first stage's: within the task ceiling).
        run: the body, ``fn(ctx)`` or ``async def fn(ctx)``; its return value is the next stage's input.
        tools: the tools its model may call by name (``ctx.task.tools``).
        ttl: lifetime of each tool call's credential, in seconds (default: the run's ``call_ttl``).
        policy: how the stage's refused or failed tool calls reach it (default: the run's policy).

    Attributes:
        is_async: the body is ``async def`` (it needs :meth:`Pipeline.arun`).
    """

    name: str
    scope: ScopeSpec
    run: Callable[[StageContext], Any] = field(repr=False)
    tools: Sequence[ScopedTool] = ()
    ttl: int | None = None
    policy: Policy | None = None
    is_async: bool = field(init=False, repr=False)
    _templates: tuple[ScopeTemplate, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigurationError(f"stage name {self.name!r} must be 1-64 ASCII letters, digits, '_' or '-'")
        if not callable(self.run):
            raise ConfigurationError(f"stage {self.name!r}: run must be a function taking the stage context")
        templates: tuple[ScopeTemplate, ...] = ()
        if not callable(self.scope):
            templates = _templates(self.scope, f"stage {self.name!r}")
        object.__setattr__(self, "_templates", templates)
        tools = tuple(self.tools)
        for tool in tools:
            if not isinstance(tool, ScopedTool):
                raise ConfigurationError(f"stage {self.name!r}: tools must be ScopedTool objects (use @scoped_tool)")
        if self.ttl is not None and (isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or self.ttl < 1):
            raise ConfigurationError(f"stage {self.name!r}: ttl must be a positive whole number of seconds")
        if self.policy is not None and not isinstance(self.policy, Policy):
            raise ConfigurationError(f"stage {self.name!r}: policy must be a Policy")
        object.__setattr__(self, "tools", tools)
        object.__setattr__(self, "is_async", _is_async(self.run))

    @property
    def static_scope(self) -> tuple[str, ...] | None:
        """The declared scopes, or None when they depend on the stage's input."""
        if callable(self.scope) or any(t.placeholders for t in self._templates):
            return None
        return tuple(dict.fromkeys(t.template for t in self._templates))

    def scopes_for(self, value: Any) -> tuple[str, ...]:
        """The scopes the stage needs for this input.

        Raises:
            UnsafeArgumentError: a template value from the input is not a plain identifier, or a scope function
                returned a wildcard.
            ConfigurationError: a template needs a mapping and the input is not one, or the function's result
                is not a scope.
        """
        where = f"stage {self.name!r}"
        if not callable(self.scope):
            if self.static_scope is not None:
                return self.static_scope
            if not isinstance(value, Mapping):
                names = sorted({n for t in self._templates for n in t.placeholders})
                raise ConfigurationError(
                    f"{where}: its scope template needs the previous stage to return a mapping with {names}"
                )
            return render_scopes(self._templates, value)
        scopes = scopes_of(self.scope(value), f"{where} (its scope function)")
        for scope in scopes:
            if parse_scope(scope).identifier == WILDCARD:
                raise UnsafeArgumentError(
                    argument=f"{self.name} scope function",
                    template=scope,
                    reason="a computed stage scope cannot be a wildcard (declare wildcard scopes statically)",
                )
        return scopes


def stage(
    scope: ScopeSpec,
    *,
    name: str | None = None,
    tools: Sequence[ScopedTool] = (),
    ttl: int | None = None,
    policy: Policy | None = None,
) -> Callable[[Callable[[StageContext], Any]], Stage]:
    """Declare a stage from its body: ``@stage(["read:kb:*"])`` over ``def knowledge(ctx): ...``.

    The stage is named after the function unless ``name`` is given; see :class:`Stage` for the arguments.
    """

    def declare(fn: Callable[[StageContext], Any]) -> Stage:
        label = name if name is not None else str(getattr(fn, "__name__", ""))
        return Stage(label, scope, fn, tools=tools, ttl=ttl, policy=policy)

    return declare
