"""Scopes and scope templates: pure functions, no I/O.

A scope is ``action:resource:identifier`` — exactly three non-empty parts. ``*`` is allowed only as the whole
identifier and means "any identifier". No part may hold whitespace, control characters (C0 or C1), invisible
format characters (zero-width spaces, bidirectional overrides, byte order marks) or lone surrogates: two scopes
that print the same must be the same scope. A held scope covers a requested one when action and resource are equal
and the held identifier is ``*`` or equal. Authority only narrows, so every check here is "is requested ⊆ held".

Templates turn a tool's arguments into the exact scope it needs (``read:records:{patient_id}``). The arguments
are chosen by a model, so each interpolated value must be a *safe identifier* — it must match
:data:`SAFE_VALUE_PATTERN`::

    [A-Za-z0-9_][A-Za-z0-9_.@+-]{0,127}

That is: ASCII letters, digits and ``_ . @ + -``, starting with a letter, digit or underscore, 1 to 128
characters. Everything else is refused before anything is minted, which rules out ``*`` (wildcard), ``:``
(a fourth part), whitespace and control characters, ``/`` and ``..`` (paths), ``%`` (encodings), every
non-ASCII character (look-alikes of ``:`` and ``*``), empty and over-long values.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import ScopeError, UnsafeArgumentError

__all__ = [
    "MAX_RENDERED_SCOPES",
    "MAX_VALUE_LENGTH",
    "SAFE_VALUE_PATTERN",
    "WILDCARD",
    "Scope",
    "ScopeTemplate",
    "covers",
    "covers_all",
    "is_identifier",
    "is_plain_scope",
    "is_valid_scope",
    "parse_scope",
    "render_scopes",
    "safe_value",
    "uncovered",
]

WILDCARD = "*"
MAX_VALUE_LENGTH = 128
# List arguments multiply; one template may not render more distinct scopes than this for one call.
MAX_RENDERED_SCOPES = 100
SAFE_VALUE_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.@+\-]{0,127}"

_SAFE_VALUE = re.compile(SAFE_VALUE_PATTERN)
_INT_LIMIT = 10**MAX_VALUE_LENGTH  # the smallest int whose digits are over-long
# A scope part: no separator, no whitespace or control characters, no wildcard (the identifier is checked apart).
_PART = re.compile(r"[^\s:*\x00-\x1f\x7f-\x9f]+")
# Beyond ASCII, also refuse by Unicode category: controls, invisible format characters and lone surrogates.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _is_part(text: str) -> bool:
    if not _PART.fullmatch(text):
        return False
    return text.isascii() or not any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in text)


@dataclass(frozen=True, slots=True)
class Scope:
    """One parsed scope. Build it with :func:`parse_scope`, which validates."""

    action: str
    resource: str
    identifier: str

    def __str__(self) -> str:
        return f"{self.action}:{self.resource}:{self.identifier}"

    @property
    def is_wildcard(self) -> bool:
        return self.identifier == WILDCARD

    def covers(self, requested: Scope) -> bool:
        """True when holding ``self`` authorises ``requested``."""
        return (
            self.action == requested.action
            and self.resource == requested.resource
            and (self.identifier == WILDCARD or self.identifier == requested.identifier)
        )


def parse_scope(text: str) -> Scope:
    """Parse and validate one scope.

    Raises:
        ScopeError: not exactly three non-empty parts, a wildcard outside the whole identifier, or whitespace,
            control, invisible format or surrogate characters anywhere.
    """
    if not isinstance(text, str):
        raise ScopeError(f"a scope must be a string, not {type(text).__name__}")
    parts = text.split(":")
    if len(parts) != 3:
        raise ScopeError(f"scope {text[:200]!r} must have exactly three parts: action:resource:identifier", scope=text)
    action, resource, identifier = parts
    if not _is_part(action) or not _is_part(resource):
        raise ScopeError(
            f"scope {text[:200]!r}: action and resource must be non-empty, without '*', whitespace, "
            "control or invisible characters",
            scope=text,
        )
    if identifier != WILDCARD and not _is_part(identifier):
        raise ScopeError(
            f"scope {text[:200]!r}: the identifier must be non-empty, without whitespace, control or "
            "invisible characters, and '*' only as the whole identifier",
            scope=text,
        )
    return Scope(action, resource, identifier)


def is_valid_scope(text: object) -> bool:
    """True when ``text`` is a well-formed scope string."""
    if not isinstance(text, str):
        return False
    try:
        parse_scope(text)
    except ScopeError:
        return False
    return True


def is_identifier(text: object) -> bool:
    """True when ``text`` is a plain identifier (:data:`SAFE_VALUE_PATTERN`), the rule for model-chosen values.

    The embedded broker applies the same rule to every id it stores (task and orchestrator ids, revocation
    targets): no look-alikes, no invisible or control characters, no separators, so two ids that print the same
    are the same id.
    """
    return isinstance(text, str) and _SAFE_VALUE.fullmatch(text) is not None


def is_plain_scope(text: object) -> bool:
    """True when every part of the scope ``text`` is a plain identifier (``*`` allowed as the whole identifier).

    Stricter than :func:`is_valid_scope`, which accepts any printable Unicode part: this is the rule the embedded
    broker applies to every scope it stores, the one scope templates already guarantee for what they render.
    """
    if not isinstance(text, str):
        return False
    parts = text.split(":")
    if len(parts) != 3:
        return False
    action, resource, identifier = parts
    return is_identifier(action) and is_identifier(resource) and (identifier == WILDCARD or is_identifier(identifier))


def _as_scope(value: str | Scope) -> Scope:
    return value if isinstance(value, Scope) else parse_scope(value)


def covers(held: str | Scope, requested: str | Scope) -> bool:
    """True when the held scope authorises the requested one. Malformed input raises :class:`ScopeError`."""
    return _as_scope(held).covers(_as_scope(requested))


def uncovered(held: Iterable[str | Scope], requested: Iterable[str | Scope]) -> list[str]:
    """The requested scopes that no held scope covers, in request order (empty when all are covered)."""
    held_scopes = [_as_scope(h) for h in held]
    missing: list[str] = []
    for item in requested:
        want = _as_scope(item)
        if not any(h.covers(want) for h in held_scopes):
            missing.append(str(want))
    return missing


def covers_all(held: Iterable[str | Scope], requested: Iterable[str | Scope]) -> bool:
    """True when every requested scope is covered by some held scope (an empty request is covered)."""
    return not uncovered(held, requested)


def safe_value(argument: str, value: object, template: str) -> str:
    """Return ``value`` as text when it is a safe identifier; raise :class:`UnsafeArgumentError` otherwise.

    Only ``str`` and ``int`` (not ``bool``) are accepted: anything else has no single canonical text form. The
    text is the value itself (its digits, or its characters), never what a subclass's ``__str__`` says, so the
    scope names exactly what the tool will receive.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UnsafeArgumentError(
            argument=argument, template=template, reason=f"{type(value).__name__} values are not allowed"
        )
    if isinstance(value, int):
        number = int.__index__(value)
        # Compare before converting: str() of a huge int raises a bare ValueError (and costs quadratic time).
        if abs(number) >= _INT_LIMIT:
            raise UnsafeArgumentError(
                argument=argument, template=template, reason=f"the value is longer than {MAX_VALUE_LENGTH}"
            )
        text = str(number)
    else:
        text = str.__str__(value)
    if not text:
        raise UnsafeArgumentError(argument=argument, template=template, reason="the value is empty")
    if len(text) > MAX_VALUE_LENGTH:
        raise UnsafeArgumentError(
            argument=argument, template=template, reason=f"the value is longer than {MAX_VALUE_LENGTH}"
        )
    if not _SAFE_VALUE.fullmatch(text):
        raise UnsafeArgumentError(
            argument=argument,
            template=template,
            reason="the value is not a plain identifier (allowed: ASCII letters, digits and _ . @ + -)",
        )
    return text


@dataclass(frozen=True, slots=True)
class ScopeTemplate:
    """A compiled scope template such as ``read:records:{patient_id}``.

    Placeholders are ``{name}`` with a Python identifier as name; each names a tool argument. A list (or tuple)
    argument renders one scope per element; several list arguments render their product, which may hold at most
    :data:`MAX_RENDERED_SCOPES` distinct combinations (the lists are chosen by a model). Literal text must itself
    form a valid scope shape, and ``*`` may appear only as a whole, literal identifier.
    """

    template: str
    placeholders: tuple[str, ...]

    @classmethod
    def compile(cls, template: str) -> ScopeTemplate:
        if not isinstance(template, str) or not template:
            raise ScopeError("a scope template must be a non-empty string", scope=None)
        names = tuple(dict.fromkeys(_PLACEHOLDER.findall(template)))
        skeleton = _PLACEHOLDER.sub("x", template)
        if "{" in skeleton or "}" in skeleton:
            raise ScopeError(
                f"scope template {template!r}: placeholders must look like {{name}} with a Python identifier",
                scope=template,
            )
        parse_scope(skeleton)  # shape check, with every placeholder standing for a safe value
        if names and template.split(":")[-1] != "*" and "*" in template:
            raise ScopeError(f"scope template {template!r}: '*' cannot be mixed with placeholders", scope=template)
        return cls(template, names)

    def render(self, arguments: Mapping[str, object]) -> tuple[str, ...]:
        """Render every scope this template needs for ``arguments``.

        Raises:
            UnsafeArgumentError: a value is missing, unsafe, an empty list, or the lists would render more than
                :data:`MAX_RENDERED_SCOPES` scopes.
        """
        if not self.placeholders:
            return (self.template,)
        choices: list[list[str]] = []
        combinations = 1
        for name in self.placeholders:
            if name not in arguments:
                raise UnsafeArgumentError(argument=name, template=self.template, reason="the argument is missing")
            value = arguments[name]
            if isinstance(value, (list, tuple)):
                if not value:
                    raise UnsafeArgumentError(argument=name, template=self.template, reason="the list is empty")
                texts = list(dict.fromkeys(safe_value(name, item, self.template) for item in value))
            else:
                texts = [safe_value(name, value, self.template)]
            # Checked before the product is built, so the refusal costs no more than reading the arguments.
            combinations *= len(texts)
            if combinations > MAX_RENDERED_SCOPES:
                raise UnsafeArgumentError(
                    argument=name,
                    template=self.template,
                    reason=f"the list arguments would render too many scopes (more than {MAX_RENDERED_SCOPES})",
                )
            choices.append(texts)
        rendered: list[str] = []
        for combo in itertools.product(*choices):
            # Safe: compile() proved every brace belongs to a {name} placeholder (no format specs possible).
            rendered.append(self.template.format_map(dict(zip(self.placeholders, combo, strict=True))))
        return tuple(dict.fromkeys(rendered))


def render_scopes(templates: Sequence[ScopeTemplate], arguments: Mapping[str, object]) -> tuple[str, ...]:
    """Render several templates for one call; the result is de-duplicated and keeps declaration order."""
    out: list[str] = []
    for template in templates:
        out.extend(template.render(arguments))
    return tuple(dict.fromkeys(out))
