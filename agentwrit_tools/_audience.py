"""Resource indicators (RFC 8707): the URL a credential is bound to, checked the same way everywhere. No I/O.

A credential for an MCP server carries that server's resource URL in ``aud``, so a server refuses a token
minted for another one. The broker (which issues such tokens), the guard (which asks for them and gates on the
verified ``aud``) and the protected MCP server (which demands its own URL) all accept the same shape: an
absolute ``http``/``https`` URL with a host, no user information, no fragment, printable ASCII only, at most
:data:`MAX_LENGTH` characters. The comparison is exact, character for character: a resource URL is an
identifier here, not something to normalise.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MAX_LENGTH", "resource_problem"]

MAX_LENGTH = 512
_PRINTABLE = re.compile(r"[!-~]+")


def resource_problem(value: object) -> str | None:
    """Why ``value`` is not a usable resource URL, or None when it is one."""
    if not isinstance(value, str) or not value:
        return "a resource URL must be a non-empty string"
    if len(value) > MAX_LENGTH:
        return f"a resource URL must be at most {MAX_LENGTH} characters"
    if not _PRINTABLE.fullmatch(value):
        return "a resource URL must be printable ASCII without spaces"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "a resource URL must be a well-formed absolute URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "a resource URL must be an absolute http:// or https:// URL with a host"
    if "@" in parts.netloc:
        return "a resource URL must not carry user information"
    if parts.fragment or value.endswith("#"):
        return "a resource URL must not have a fragment"
    del port
    return None
