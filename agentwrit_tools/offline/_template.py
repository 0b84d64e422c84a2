"""``{name}`` placeholders for rule arguments and answers.

Deliberately not :meth:`str.format`: rule files are data, and ``format`` would let ``{x.__class__}`` reach into
objects. Only ``{identifier}`` is a placeholder; ``{{`` and ``}}`` are literal braces, and any other brace is
left as it is, so a constant that happens to look like JSON survives untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MissingValue", "placeholders", "placeholders_in_value", "render", "render_value"]

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingValue(LookupError):
    """A placeholder has no value; the caller decides whether that skips a call or prints a stand-in text."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def placeholders(template: str) -> tuple[str, ...]:
    """The placeholder names in ``template``, in order of first appearance, so rules can be checked at load."""
    names: dict[str, None] = {}
    for match in _TOKEN.finditer(template):
        if match.group(1) is not None:
            names.setdefault(match.group(1))
    return tuple(names)


def render(template: str, values: Mapping[str, str], *, missing: Callable[[str], str] | None = None) -> str:
    """Fill ``template`` from ``values``.

    Args:
        template: text with ``{name}`` placeholders.
        values: the values by name.
        missing: what to print for a name without a value; when ``None``, :class:`MissingValue` is raised
            instead, because a tool argument must never be invented.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        if name in values:
            return values[name]
        if missing is None:
            raise MissingValue(name)
        return missing(name)

    return _TOKEN.sub(substitute, template)


def render_value(value: Any, values: Mapping[str, str]) -> Any:
    """Fill every string inside a JSON-shaped value (constants of other types pass through unchanged)."""
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, Mapping):
        return {key: render_value(item, values) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, values) for item in value]
    return value


def placeholders_in_value(value: Any) -> tuple[str, ...]:
    """Every placeholder name inside a JSON-shaped value."""
    if isinstance(value, str):
        return placeholders(value)
    if isinstance(value, Mapping):
        items: list[Any] = list(value.values())
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return ()
    names: dict[str, None] = {}
    for item in items:
        for name in placeholders_in_value(item):
            names.setdefault(name)
    return tuple(names)
