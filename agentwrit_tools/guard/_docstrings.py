"""Reading a Google-style docstring: the description for the model, and one description per argument.

Only what a tool schema needs is parsed: the text before the first section (the tool's description) and the
``Args:`` section (parameter descriptions). Other sections (``Returns:``, ``Raises:``…) are left out of the
description — they document the Python function, not what the model should know.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["Docstring", "parse_docstring"]

_ARGS_HEADERS = frozenset({"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"})
_OTHER_HEADERS = frozenset(
    {
        "returns",
        "return",
        "yields",
        "yield",
        "raises",
        "raise",
        "examples",
        "example",
        "note",
        "notes",
        "attributes",
        "see also",
        "warning",
        "warnings",
        "todo",
        "references",
    }
)
_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
# "name: text", "name (type): text", "*args: text"; the type in parentheses is ignored (the annotation rules).
_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Docstring:
    """The parts of a docstring a tool schema uses."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)


def _join(lines: list[str]) -> str:
    """Paragraphs kept apart by a blank line; lines inside a paragraph joined with spaces."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _params(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    base: int | None = None
    name: str | None = None
    for line in lines:
        if not line.strip():
            if name is not None:
                params[name].append("")  # a paragraph break inside one argument's description
            continue
        indent = _indent(line)
        if base is None:
            base = indent
        match = _ENTRY.match(line.strip()) if indent <= base else None
        if match:
            name = match.group(1)
            params[name] = [match.group(2)]
        elif name is not None:
            params[name].append(line)
    return {key: _join(value) for key, value in params.items()}


def parse_docstring(doc: str | None) -> Docstring:
    """Split a docstring into its description and its ``Args:`` entries."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        header = _HEADER.match(line) if _indent(line) == 0 else None
        key = header.group(1).strip().lower() if header else None
        if key is not None and (key in _ARGS_HEADERS or key in _OTHER_HEADERS):
            current = sections.setdefault("args" if key in _ARGS_HEADERS else key, [])
        elif current is None:
            description.append(line)
        else:
            current.append(line)
    return Docstring(_join(description), _params(sections.get("args", [])))
