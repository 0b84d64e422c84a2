"""The HTTP/1.1 protocol the served broker speaks: httptools when it is installed, else h11 (uvicorn's choice).

httptools (llhttp, in C) parses a request for about a third of what h11 costs in Python, which on the per-call
path (a registration and a release per guarded call) is about a tenth of the broker's CPU; uvloop, chosen by
uvicorn's ``loop="auto"`` when installed, saves a little more. Both come with ``pip install
'agentwrit-tools[broker]'`` where wheels exist; without them the broker runs as before.

One difference had to be closed: llhttp refuses a request it cannot parse — including any method it does not know
(``BREW /v1/health``), which h11 passes on to the app for a 405 — and uvicorn answers that with a plain-text 400.
Here that answer is the broker's own: an RFC 7807 problem (``invalid_request``) that echoes nothing of the request,
with the security headers every other answer carries.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ._problems import problem_body

__all__ = ["http_protocol"]

_SECURITY = b"x-content-type-options: nosniff\r\ncache-control: no-store\r\nx-frame-options: DENY\r\n"


def _problem_400() -> bytes:
    request_id = secrets.token_hex(8)
    body = json.dumps(
        problem_body(400, "invalid_request", "the request is not valid HTTP/1.1", instance="", request_id=request_id)
    ).encode()
    head = (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n"
        + b"content-length: %d\r\nconnection: close\r\nx-request-id: %s\r\n" % (len(body), request_id.encode())
        + _SECURITY
        + b"\r\n"
    )
    return head + body


def http_protocol() -> Any:
    """The protocol class for ``uvicorn.Config(http=...)``: httptools with problem-document 400s, or ``"h11"``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        return "h11"

    class ProblemHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            self.transport.write(_problem_400())
            self.transport.close()

    return ProblemHttpToolsProtocol
