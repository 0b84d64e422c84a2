"""HTTP/1.1 for the broker's wire, written once and free of I/O: request bytes out, a response parsed from bytes in.

Why not httpx on the hot path: building an ``httpx.Request``, running it through the client, the transport,
httpcore's pool and h11, and wrapping the answer in an ``httpx.Response`` costs ~400 µs of client CPU per request
on a 2-vCPU machine, while the broker's own work for a registration is about the same. A guarded call is two
requests, so that was most of what the client spent. What the broker contract needs from HTTP is small: JSON
bodies with a ``Content-Length``, a handful of headers, keep-alive. This module is that, with the parts a server
or a proxy in between may still send (chunked bodies, a body read to the end of the connection, interim 1xx
answers, ``Connection: close``) and hard limits on what it accepts.

The two thin edges that move the bytes are :mod:`._wire` (sockets, sync) and :mod:`._awire` (anyio streams).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from ._steps import Response

__all__ = ["MAX_BODY", "MAX_HEAD", "Origin", "ResponseParser", "WireViolation", "encode_request"]

MAX_HEAD = 64 * 1024  # status line + headers of one response
MAX_BODY = 64 * 1024 * 1024  # an audit page of 1000 events is well under 1 MiB
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class WireViolation(Exception):
    """The bytes that came back are not an HTTP/1.1 response we accept (the connection is then closed)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host, port, the ``Host`` header, and the base URL's path prefix."""

    scheme: str
    host: str
    port: int
    authority: str
    prefix: str

    @classmethod
    def parse(cls, base_url: str) -> Origin:
        """An ``http(s)://host[:port][/prefix]`` URL (already validated by the client's settings)."""
        parts = urlsplit(base_url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        default = (scheme, port) in (("http", 80), ("https", 443))
        return cls(scheme, host, port, shown if default else f"{shown}:{port}", parts.path.rstrip("/"))


def encode_request(
    origin: Origin,
    method: str,
    path: str,
    *,
    params: Mapping[str, str | int] | None,
    headers: Iterable[tuple[str, str]],
    content: bytes | None,
) -> bytes:
    """One request, head and body in one buffer (so it leaves in one write, and the broker wakes up once).

    Header values come from this package (ids, bearer tokens, fixed strings); one carrying CR or LF would split the
    request, so it is refused rather than sent.
    """
    target = quote(origin.prefix + path, safe=_PATH_SAFE)
    if params:
        target += "?" + urlencode([(k, str(v)) for k, v in params.items()])
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.authority}"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
            raise ValueError("a request header name or value is not sendable")
        lines.append(f"{name}: {value}")
    if content is not None:
        lines.append(f"Content-Length: {len(content)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + content if content else head


class ResponseParser:
    """Feed it what the connection delivers until :meth:`feed` (or :meth:`eof`) says the response is complete.

    Args:
        method: the request's method (a ``HEAD`` answer has no body).
        max_body: the largest body accepted.

    After completion :attr:`response` holds the answer and :attr:`keep_alive` says whether the connection may
    carry another request; bytes past the response (a server may not send any) make it not reusable.
    """

    def __init__(self, method: str = "GET", *, max_body: int = MAX_BODY) -> None:
        self._method = method
        self._max_body = max_body
        self._buffer = bytearray()
        self._state = "head"  # head → body | chunk-size → chunk-data → chunk-end → trailers → done; or until-close
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._remaining = 0
        self.keep_alive = False
        self.response: Response | None = None

    @property
    def started(self) -> bool:
        """Some of the response has arrived (a failure now is after the broker acted)."""
        return bool(self._buffer) or self._state != "head"

    def feed(self, data: bytes) -> bool:
        """Take more bytes; True once the response is complete.

        Raises:
            WireViolation: malformed or oversized.
        """
        if self.response is not None:
            if data:
                self.keep_alive = False  # bytes nobody asked for: the connection is not to be trusted again
            return True
        self._buffer += data
        while self._state != "done":
            if not _STEPS[self._state](self):
                return False
        if self._buffer:
            self.keep_alive = False
        return True

    def eof(self) -> bool:
        """The connection closed. True when that completes the response (a body read to the end).

        Raises:
            WireViolation: the response was cut short.
        """
        if self.response is not None:
            return True
        if self._state == "until-close":
            self._finish(keep_alive=False)
            return True
        raise WireViolation("the connection closed before the response was complete")

    # -- states ------------------------------------------------------------------------------------------------

    def _on_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise WireViolation("the response head is too large")
            return False
        if end > MAX_HEAD:
            raise WireViolation("the response head is too large")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *lines = head.split("\r\n")
        status, http11 = _status_line(status_line)
        headers = _headers(lines)
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            if status == 101:
                raise WireViolation("the server switched protocols")
            return True
        self._status, self._headers = status, headers
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        self.keep_alive = "close" not in tokens if http11 else "keep-alive" in tokens
        if headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise WireViolation("an encoded body (none was asked for)")
        if self._method == "HEAD" or status in (204, 304):
            self._finish(keep_alive=self.keep_alive)
            return True
        encoding = headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise WireViolation("an unsupported transfer-encoding")
            self._state = "chunk-size"
            return True
        length = headers.get("content-length")
        if length is None:
            self._state = "until-close"
            self.keep_alive = False
            return True
        self._remaining = _content_length(length, self._max_body)
        self._state = "body"
        return True

    def _take(self) -> bool:
        """Move up to ``_remaining`` buffered bytes into the body; True once all of them have arrived."""
        take = min(self._remaining, len(self._buffer))
        self._body += self._buffer[:take]
        del self._buffer[:take]
        self._remaining -= take
        return not self._remaining

    def _on_body(self) -> bool:
        if not self._take():
            return False
        self._finish(keep_alive=self.keep_alive)
        return True

    def _on_until_close(self) -> bool:
        self._body += self._buffer
        self._buffer.clear()
        if len(self._body) > self._max_body:
            raise WireViolation("the response body is too large")
        return False

    def _on_chunk_size(self) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > 1024:
                raise WireViolation("a chunk size line is too long")
            return False
        line = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
        del self._buffer[: end + 2]
        if not line or len(line) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in line):
            raise WireViolation("a malformed chunk size")
        size = int(line, 16)
        if len(self._body) + size > self._max_body:
            raise WireViolation("the response body is too large")
        self._remaining = size
        self._state = "chunk-data" if size else "trailers"
        return True

    def _on_chunk_data(self) -> bool:
        if not self._take():
            return False
        self._state = "chunk-end"
        return True

    def _on_chunk_end(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer[:2] != b"\r\n":
            raise WireViolation("a chunk is not followed by CRLF")
        del self._buffer[:2]
        self._state = "chunk-size"
        return True

    def _on_trailers(self) -> bool:
        if self._buffer[:2] == b"\r\n":
            del self._buffer[:2]
            self._finish(keep_alive=self.keep_alive)
            return True
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise WireViolation("the trailers are too large")
            return False
        del self._buffer[: end + 4]  # trailers carry nothing the contract uses
        self._finish(keep_alive=self.keep_alive)
        return True

    def _finish(self, *, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.response = Response(self._status, self._headers, bytes(self._body))
        self._state = "done"


_STEPS: dict[str, Callable[[ResponseParser], bool]] = {
    "head": ResponseParser._on_head,
    "body": ResponseParser._on_body,
    "until-close": ResponseParser._on_until_close,
    "chunk-size": ResponseParser._on_chunk_size,
    "chunk-data": ResponseParser._on_chunk_data,
    "chunk-end": ResponseParser._on_chunk_end,
    "trailers": ResponseParser._on_trailers,
}


def _status_line(line: str) -> tuple[int, bool]:
    """The status code, and whether the server speaks HTTP/1.1 (keep-alive by default)."""
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit() or rest[3:4] not in ("", " "):
        raise WireViolation("not an HTTP/1.x status line")
    return int(code), version == "HTTP/1.1"


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise WireViolation("a malformed response header")
        key, value = name.lower(), value.strip(" \t")
        if key in headers:
            if key == "content-length" and headers[key] != value:
                raise WireViolation("conflicting Content-Length headers")
            if key != "content-length":
                headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    return headers


def _content_length(value: str, limit: int) -> int:
    if not value.isdigit() or len(value) > 18:
        raise WireViolation("a malformed Content-Length")
    length = int(value)
    if length > limit:
        raise WireViolation("the response body is too large")
    return length
