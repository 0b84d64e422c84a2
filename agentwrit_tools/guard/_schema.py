"""From a Python signature to the JSON schema the model sees, and back from the model's arguments to a call.

Two shapes are supported:

* plain parameters — one pydantic field per parameter (annotation, default, ``Args:`` description); unknown
  arguments are refused (``additionalProperties: false``) so a model cannot smuggle anything in;
* one pydantic model parameter — its own schema and validation, unchanged; the tool receives the instance.

A parameter named ``credential`` is the guard's to fill: it is never in the schema, and a model that sends
``credential`` anyway is refused like any other unknown argument.

Scope templates are rendered from the *validated* values — exactly what the tool will receive — never from the
raw JSON, so coercion cannot make the scope and the call disagree.
"""

from __future__ import annotations

import copy
import enum
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import ConfigurationError, redact
from ..scopes import ScopeTemplate
from ._docstrings import parse_docstring

__all__ = ["CREDENTIAL_PARAMETER", "ArgumentProblems", "Bound", "ToolSignature", "as_object", "build_signature"]

CREDENTIAL_PARAMETER = "credential"
_MAX_PROBLEMS = 5
_MAX_LOC = 64


class ArgumentProblems(Exception):
    """The model's arguments did not validate (internal: the guard turns it into a result or an error).

    Attributes:
        problems: ``(location, message)`` pairs, shortened and redacted; never the offending values.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("invalid arguments")
        self.problems = tuple(problems)[:_MAX_PROBLEMS]


@dataclass(frozen=True, slots=True)
class Bound:
    """Validated arguments: how to call the function, and the values the scope templates render from."""

    kwargs: dict[str, Any]
    values: dict[str, Any]


def _short(text: str, limit: int) -> str:
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(_short(str(part), _MAX_LOC) for part in error["loc"]) or "(arguments)"
        out.append((loc, _short(str(error["msg"]), 200)))
    return out


def as_object(arguments: Mapping[str, Any] | str | bytes | None) -> Mapping[str, Any]:
    """The model's arguments as a mapping: a dict as it is, JSON text parsed, nothing as ``{}``.

    Raises:
        ArgumentProblems: not valid JSON, or not a JSON object.
    """
    if arguments is None:
        return {}
    if isinstance(arguments, (str, bytes)):
        try:
            arguments = json.loads(arguments or "{}")
        except (ValueError, RecursionError):
            raise ArgumentProblems([("(arguments)", "not valid JSON")]) from None
    if not isinstance(arguments, Mapping):
        raise ArgumentProblems([("(arguments)", "must be a JSON object")])
    return arguments


def _strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles (noise for a model); property names stay untouched."""
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def _renderable(annotation: Any, *, in_list: bool = False) -> bool:
    """Whether values of this type can become a scope identifier (str, int, their enums and literals, lists)."""
    if annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _renderable(get_args(annotation)[0], in_list=in_list)
    if origin is Literal:
        return all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in get_args(annotation))
    if origin is Union or origin is types.UnionType:
        return all(_renderable(arg, in_list=in_list) for arg in get_args(annotation))
    if not in_list and origin in (list, tuple, set, frozenset, Sequence, typing.Sequence):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return all(_renderable(a, in_list=True) for a in args)
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return False
        if issubclass(annotation, enum.Enum):
            return issubclass(annotation, (str, int))
        return issubclass(annotation, (str, int))
    return False


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


@dataclass(frozen=True)
class ToolSignature:
    """What the guard knows about a tool function's parameters."""

    model: type[BaseModel]
    fields: tuple[tuple[str, str], ...]  # (parameter name, model field name) for plain parameters
    model_parameter: str | None  # the parameter receiving the whole model, when the tool takes one
    takes_credential: bool
    parameters: dict[str, Any]
    description: str

    def validate(self, arguments: Mapping[str, Any] | str | None) -> Bound:
        """Validate the model's arguments (a dict, or the JSON text of one).

        Raises:
            ArgumentProblems: not a JSON object, or not valid for the schema.
        """
        try:
            instance = self.model.model_validate(dict(as_object(arguments)))
        except ValidationError as exc:
            raise ArgumentProblems(_problems(exc)) from None
        if self.model_parameter is not None:
            values = {name: getattr(instance, name) for name in type(instance).model_fields}
            return Bound({self.model_parameter: instance}, values)
        kwargs = {param: getattr(instance, field) for param, field in self.fields}
        return Bound(kwargs, dict(kwargs))

    def renderable_names(self) -> dict[str, Any]:
        """Each name a template may use, with its annotation."""
        if self.model_parameter is not None:
            return {name: info.annotation for name, info in self.model.model_fields.items()}
        return {param: self.model.model_fields[field].annotation for param, field in self.fields}

    def check_templates(self, templates: Sequence[ScopeTemplate], tool: str) -> None:
        """Every placeholder must name an argument whose values can form a scope identifier."""
        names = self.renderable_names()
        for template in templates:
            for placeholder in template.placeholders:
                if placeholder == CREDENTIAL_PARAMETER:
                    raise ConfigurationError(
                        f"tool {tool!r}: scope template {template.template!r} cannot use {{credential}}"
                    )
                if placeholder not in names:
                    known = ", ".join(sorted(names)) or "none"
                    raise ConfigurationError(
                        f"tool {tool!r}: scope template {template.template!r} names {{{placeholder}}}, which is not "
                        f"an argument of the tool (arguments: {known})"
                    )
                if not _renderable(names[placeholder]):
                    raise ConfigurationError(
                        f"tool {tool!r}: argument {placeholder!r} is used in scope template {template.template!r} "
                        "but its type cannot form a scope identifier (use str, int, a str/int enum or literal, "
                        "or a list of those)"
                    )


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    plain = inspect.isfunction(fn) or inspect.ismethod(fn)
    target = fn if plain else getattr(fn, "__call__", fn)  # noqa: B004 - a callable object's hints live there
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(
            f"tool {_fn_name(fn)!r}: its annotations cannot be resolved ({type(exc).__name__}); "
            "import every annotated type at module level"
        ) from None


def build_signature(fn: Callable[..., Any], *, tool: str, description: str | None) -> ToolSignature:
    """Read ``fn``'s signature and docstring into a validation model and a JSON schema.

    Raises:
        ConfigurationError: ``*args``/``**kwargs`` or positional-only parameters, unresolvable annotations.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ConfigurationError(f"tool {tool!r}: its signature cannot be read") from None
    hints = _hints(fn)
    doc = parse_docstring(inspect.getdoc(fn))
    takes_credential = False
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigurationError(
                f"tool {tool!r}: *args and **kwargs cannot be described to a model; declare each argument"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigurationError(f"tool {tool!r}: positional-only parameter {param.name!r} cannot be named")
        if param.name == CREDENTIAL_PARAMETER:
            takes_credential = True
            continue
        params.append(param)
    text = description if description is not None else doc.description

    if len(params) == 1:
        only = hints.get(params[0].name)
        if isinstance(only, type) and issubclass(only, BaseModel):
            schema = _strip_titles(copy.deepcopy(only.model_json_schema()))
            return ToolSignature(only, (), params[0].name, takes_credential, schema, text)

    definitions: dict[str, Any] = {}
    fields: list[tuple[str, str]] = []
    for index, param in enumerate(params):
        field_name = f"arg{index}"  # aliases keep parameter names such as "json" or "model_x" clash-free
        extra: dict[str, Any] = {"alias": param.name}
        if param.name in doc.params:
            extra["description"] = doc.params[param.name]
        default = ... if param.default is inspect.Parameter.empty else param.default
        definitions[field_name] = (hints.get(param.name, Any), Field(default, **extra))
        fields.append((param.name, field_name))
    model = create_model(
        f"{tool}_arguments", __config__=ConfigDict(extra="forbid", populate_by_name=False), **definitions
    )
    schema = _strip_titles(model.model_json_schema(by_alias=True))
    schema.setdefault("properties", {})
    return ToolSignature(model, tuple(fields), None, takes_credential, schema, text)
