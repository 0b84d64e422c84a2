"""Tools described by a JSON schema instead of a Python signature: MCP tools, Agents SDK ``FunctionTool``s.

Someone else's tool arrives as a name, a description and the JSON schema of its arguments; there is no Python
signature to read. :class:`SchemaSignature` gives the guard the same three things a signature gives it:

* the schema the model sees — the tool's own, except that an object schema saying nothing about extra
  arguments gets ``additionalProperties: false``: like every other guarded tool, an argument the schema does not
  name is refused rather than passed on (an explicit ``additionalProperties`` is left as the tool's author set it);
* validation of the model's arguments against that schema (``jsonschema``, the validator the schema's
  ``$schema`` names, Draft 2020-12 by default); problems name the location and the rule broken, never the value;
* the template check: every placeholder names a *required* property whose values can form a scope identifier
  (``string`` or ``integer``, an enum of those, or an array of them).

The body is called as ``fn(arguments=<the validated dict>)`` (plus ``credential=`` when it declares one), and the
scope is rendered from that same dict, so the scope and the call cannot disagree.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, redact
from ..scopes import ScopeTemplate
from ._schema import CREDENTIAL_PARAMETER, ArgumentProblems, Bound, as_object

__all__ = ["ARGUMENTS_PARAMETER", "SchemaSignature"]

ARGUMENTS_PARAMETER = "arguments"
_MAX_PROBLEMS = 5
_SCALARS = frozenset({"string", "integer"})


def _validator(schema: dict[str, Any], tool: str) -> Any:
    try:
        from jsonschema import validators
        from jsonschema.exceptions import SchemaError
    except ImportError:  # pragma: no cover - installed with the [mcp] and [agents] extras
        raise ConfigurationError(
            f"tool {tool!r} is described by a JSON schema, which needs the jsonschema package "
            "(pip install 'agentwrit-tools[mcp]' or '[agents]')"
        ) from None
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError:
        raise ConfigurationError(f"tool {tool!r}: its parameters are not a valid JSON schema") from None
    return cls(schema)


def _scalar_type(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind is None and "enum" in schema:
        values = schema["enum"]
        return isinstance(values, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)
    if isinstance(kind, list):
        return bool(kind) and set(kind) <= _SCALARS
    return kind in _SCALARS


def _renderable(schema: object) -> bool:
    """Whether values of this property can become a scope identifier (or a list of them)."""
    if not isinstance(schema, Mapping):
        return False
    if schema.get("type") == "array":
        items = schema.get("items")
        return isinstance(items, Mapping) and _scalar_type(items)
    return _scalar_type(schema)


def _location(path: Sequence[Any]) -> str:
    text = ".".join(str(part)[:64] for part in path) or "(arguments)"
    return redact(text)


def _takes(fn: Callable[..., Any], tool: str) -> bool:
    """Check ``fn`` can be called as ``fn(arguments=..., [credential=...])``; whether it takes the credential."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        raise ConfigurationError(f"tool {tool!r}: its signature cannot be read") from None
    if ARGUMENTS_PARAMETER not in parameters:
        raise ConfigurationError(
            f"tool {tool!r} is described by a JSON schema: its body must take the validated arguments as one "
            f"parameter named {ARGUMENTS_PARAMETER!r}"
        )
    return CREDENTIAL_PARAMETER in parameters


class SchemaSignature:
    """What the guard knows about a tool described only by a JSON schema (see the module docstring).

    Raises:
        ConfigurationError: the schema is not an object schema, not valid, or the body cannot take it.
    """

    def __init__(
        self, fn: Callable[..., Any], parameters: Mapping[str, Any], *, tool: str, description: str | None
    ) -> None:
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
            raise ConfigurationError(f"tool {tool!r}: its parameters must be a JSON schema of type 'object'")
        schema = copy.deepcopy(dict(parameters))
        schema["type"] = "object"
        schema.setdefault("properties", {})
        schema.setdefault("additionalProperties", False)
        self._validator = _validator(schema, tool)
        self.parameters: dict[str, Any] = schema
        self.description = description or ""
        self.takes_credential = _takes(fn, tool)

    def validate(self, arguments: Mapping[str, Any] | str | None) -> Bound:
        """Validate the model's arguments (a dict, or the JSON text of one) against the schema.

        Raises:
            ArgumentProblems: not a JSON object, or not valid for the schema.
        """
        instance = dict(as_object(arguments))
        errors = sorted(self._validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
        if errors:
            raise ArgumentProblems([self._problem(error, instance) for error in errors[:_MAX_PROBLEMS]])
        return Bound({ARGUMENTS_PARAMETER: instance}, instance)

    def _problem(self, error: Any, instance: Mapping[str, Any]) -> tuple[str, str]:
        if error.validator == "required" and not error.absolute_path:  # the names come from the schema
            missing = [name for name in self.parameters.get("required") or () if name not in instance]
            return "(arguments)", f"missing required argument(s): {', '.join(map(str, missing))[:200]}"
        return _location(error.absolute_path), f"does not satisfy the schema's {error.validator!r} rule"

    def check_templates(self, templates: Sequence[ScopeTemplate], tool: str) -> None:
        """Every placeholder must name a required property whose values can form a scope identifier."""
        properties = self.parameters.get("properties") or {}
        required = set(self.parameters.get("required") or ())
        for template in templates:
            for placeholder in template.placeholders:
                if placeholder not in properties:
                    known = ", ".join(sorted(properties)) or "none"
                    raise ConfigurationError(
                        f"tool {tool!r}: scope template {template.template!r} names {{{placeholder}}}, which is not "
                        f"an argument of the tool (arguments: {known})"
                    )
                if placeholder not in required:
                    raise ConfigurationError(
                        f"tool {tool!r}: argument {placeholder!r} is used in scope template {template.template!r} "
                        "but the schema does not require it"
                    )
                if not _renderable(properties[placeholder]):
                    raise ConfigurationError(
                        f"tool {tool!r}: argument {placeholder!r} is used in scope template {template.template!r} "
                        "but its schema type cannot form a scope identifier (use string or integer, an enum of "
                        "those, or an array of them)"
                    )
