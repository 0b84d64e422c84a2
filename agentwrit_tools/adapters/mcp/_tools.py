"""An MCP server's tools as guarded tools: each call minted for its own scope, bound to the server, presented.

:func:`mcp_tools` lists the session's tools and makes a :class:`~agentwrit_tools.ScopedTool` of every tool the
scope mapping names. The MCP tool's own input schema is the one the guard validates against and the model sees
(see :meth:`ScopedTool.from_schema`); the templates render from the validated arguments; every credential is
bound to the server's resource URL (``aud``) and presented as the bearer of exactly that call's ``tools/call``.
The tools work wherever guarded tools do: ``task.acall``, the OpenAI loops, LangChain, the Agents SDK.

A tool the mapping does not name is never made callable: by default it is left out (a model that calls it gets
the guard's ``unknown_tool`` denial naming it; nothing is minted and the server is never asked), or, with
``unmapped="error"``, listing it is a :class:`~agentwrit_tools.errors.ConfigurationError` naming it.

What the model is told: the tool's text (its structured content when it sends no text) on success; an MCP tool error
(``isError``) is the tool's message for the model and goes through as a ``ToolError`` (redacted like any);
a refusal by the protected server becomes a fixed sentence naming its ``error_code``; anything else is an
:class:`MCPServerError`, which the model sees only as the guard's fixed "failed" sentence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from ...errors import ConfigurationError, ToolError
from ...guard import ScopedTool
from ._bearer import presenting
from ._connect import DEFAULT_CALL_TIMEOUT, MCPConnection, MCPServerError, reason

__all__ = ["mcp_tools"]

logger = logging.getLogger("agentwrit_tools.adapters.mcp")

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REFUSALS = frozenset({"unauthorized", "insufficient_scope", "invalid_request", "verification_unavailable"})


def _output(result: Any) -> Any:
    texts = [part.text for part in result.content or () if getattr(part, "type", None) == "text"]
    if result.is_error:
        raise ToolError("; ".join(texts) or "the tool reported an error")
    if not texts and result.structured_content is not None:
        return result.structured_content
    return "\n".join(texts)


def _failure(exc: BaseException, url: str) -> Exception:
    """What a failed ``tools/call`` becomes: a refusal's fixed sentence, or an :class:`MCPServerError`."""
    error = getattr(exc, "error", None)
    data = getattr(error, "data", None)
    code = data.get("error_code") if isinstance(data, dict) else None
    if isinstance(code, str) and code in _REFUSALS:
        return ToolError(f"the MCP server refused the call ({code})")
    why = reason(exc) or "the call failed"
    return MCPServerError(f"the MCP server at {url} could not complete the call: {why}", url=url)


def _body(session: ClientSession, name: str, url: str, timeout: float) -> Any:
    async def call(arguments: dict[str, Any], credential: Any) -> Any:
        with presenting(name, credential):
            try:
                result = await session.call_tool(name, arguments, read_timeout_seconds=timeout)
            except MCPError as exc:
                raise _failure(exc, url) from None
        return _output(result)

    return call


async def mcp_tools(
    source: MCPConnection | ClientSession,
    *,
    scopes: Mapping[str, str | Sequence[str]],
    resource: str | None = None,
    unmapped: Literal["refuse", "error"] = "refuse",
    ttl: int | None = None,
    timeout: float | None = None,
) -> list[ScopedTool]:
    """The server's tools that ``scopes`` maps, as guarded tools bound to the server.

    Args:
        source: a :class:`MCPConnection` from :func:`connect`, or an initialised ``ClientSession`` whose HTTP
            client has ``CallBearer(url)`` as its ``auth`` (then pass ``resource``).
        scopes: MCP tool name → scope template(s) over its arguments (``{"get_record":
            "read:records:{patient_id}"}``).
        resource: the server's resource URL, which every credential is bound to (default: the connection's URL).
        unmapped: ``refuse`` leaves unmapped tools out (calling one is an ``unknown_tool`` denial naming it);
            ``error`` raises instead.
        ttl: each credential's lifetime limit in seconds.
        timeout: seconds a call may run (default: the connection's ``call_timeout``); then the guard releases its
            credential and reports a timeout.

    Raises:
        ConfigurationError: a mapping for a tool the server does not have, a tool name or template the guard
            refuses, no ``resource`` for a bare session, or an unmapped tool with ``unmapped="error"``.
        MCPServerError: the tools could not be listed.
    """
    limit: float | None
    if isinstance(source, MCPConnection):
        session, url, limit = source.session, resource or source.url, timeout or source.call_timeout
    elif isinstance(source, ClientSession):
        if resource is None:
            raise ConfigurationError("a bare ClientSession needs resource=<the server's MCP URL>")
        session, url, limit = source, resource, timeout
    else:
        raise ConfigurationError(f"expected an MCPConnection or an mcp ClientSession, not {type(source).__name__}")
    if unmapped not in ("refuse", "error"):
        raise ConfigurationError("unmapped must be 'refuse' or 'error'")
    try:
        listed = await session.list_tools()
    except (MCPError, TimeoutError) as exc:
        raise MCPServerError(f"cannot list the tools of {url}: {reason(exc)}", url=url) from None
    offered = {tool.name: tool for tool in listed.tools}
    missing = sorted(set(scopes) - set(offered))
    if missing:
        raise ConfigurationError(f"the scope mapping names tools {url} does not have: {', '.join(missing)}")
    left_out = sorted(name for name in offered if name not in scopes)
    if left_out and unmapped == "error":
        raise ConfigurationError(f"MCP tools with no scope mapping: {', '.join(left_out)} (map them, or refuse them)")
    if left_out:
        logger.warning("MCP tools with no scope mapping are refused: %s", ", ".join(name[:64] for name in left_out))
    tools = []
    for name, templates in scopes.items():
        if not _NAME.fullmatch(name):
            raise ConfigurationError(f"MCP tool {name[:64]!r} has a name a model API cannot call")
        tool = offered[name]
        tools.append(
            ScopedTool.from_schema(
                _body(session, name, url, limit or DEFAULT_CALL_TIMEOUT),
                tool.input_schema,
                name=name,
                scope=templates,
                description=tool.description or name,
                ttl=ttl,
                timeout=limit,
                audience=url,
            )
        )
    return tools
