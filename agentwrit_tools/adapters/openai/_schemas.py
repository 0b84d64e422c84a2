"""Tool definitions in OpenAI's two formats, from a :class:`ScopedTool`'s name, description and JSON schema.

The schema is the guard's: ``credential`` is never in it (the guard fills it), and arguments the schema does not
declare are refused when the call comes back. ``strict=True`` asks OpenAI for structured-output decoding, which
accepts only schemas where every object lists all its properties as required and forbids extra ones; a tool
whose schema is not like that is a configuration error here, not a 400 from the API at the first request.
Making such a schema strict automatically would change what the tool accepts (optional arguments would become
required-but-nullable), so it is left to the developer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...errors import ConfigurationError
from ...guard import ScopedTool

if TYPE_CHECKING:  # the openai client's own parameter types, so its create() accepts these unchanged
    from openai.types.chat import ChatCompletionFunctionToolParam
    from openai.types.responses import FunctionToolParam

__all__ = ["chat_tool", "chat_tools", "checked_parameters", "responses_tool", "responses_tools"]


def _strict_problem(schema: Any, where: str) -> str | None:
    """The first reason ``schema`` cannot be used with ``strict``, or None."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            problem = _strict_problem(item, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties")
    if isinstance(properties, dict) or schema.get("type") == "object":
        names = set(properties or {})
        if schema.get("additionalProperties") is not False:
            return f"{where} allows additional properties"
        missing = sorted(names - set(schema.get("required", ())))
        if missing:
            return f"{where} has optional properties ({', '.join(missing)})"
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                problem = _strict_problem(sub, f"{where}.{key}.{name}")
                if problem:
                    return problem
        elif key in ("items", "anyOf", "allOf", "oneOf", "prefixItems", "additionalProperties"):
            problem = _strict_problem(value, f"{where}.{key}")
            if problem:
                return problem
    return None


def checked_parameters(tool: ScopedTool, strict: bool) -> dict[str, Any]:
    """The tool's JSON schema; with ``strict``, refused unless structured-output decoding accepts it."""
    if not isinstance(tool, ScopedTool):
        raise ConfigurationError(f"expected a ScopedTool (use @scoped_tool), not {type(tool).__name__}")
    parameters = tool.parameters
    if strict:
        problem = _strict_problem(parameters, "parameters")
        if problem:
            raise ConfigurationError(
                f"tool {tool.name!r} cannot be offered with strict=True: its {problem}; strict mode needs every "
                "argument required and no extra ones (make the arguments required, or use strict=False)"
            )
    return parameters


def chat_tool(tool: ScopedTool, *, strict: bool = False) -> ChatCompletionFunctionToolParam:
    """One tool for ``client.chat.completions.create(tools=[...])``.

    Raises:
        ConfigurationError: ``strict=True`` and the tool's schema is not strict-compatible.
    """
    parameters = checked_parameters(tool, strict)
    if strict:
        return {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": parameters,
                "strict": True,
            },
        }
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": parameters},
    }


def responses_tool(tool: ScopedTool, *, strict: bool = False) -> FunctionToolParam:
    """One tool for ``client.responses.create(tools=[...])``.

    The Responses API requires the ``strict`` field, so it is always sent.

    Raises:
        ConfigurationError: ``strict=True`` and the tool's schema is not strict-compatible.
    """
    parameters = checked_parameters(tool, strict)
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": parameters,
        "strict": strict,
    }


def chat_tools(tools: Iterable[ScopedTool], *, strict: bool = False) -> list[ChatCompletionFunctionToolParam]:
    """:func:`chat_tool` for each tool (e.g. ``chat_tools(task.tools.values())``)."""
    return [chat_tool(tool, strict=strict) for tool in tools]


def responses_tools(tools: Iterable[ScopedTool], *, strict: bool = False) -> list[FunctionToolParam]:
    """:func:`responses_tool` for each tool."""
    return [responses_tool(tool, strict=strict) for tool in tools]
