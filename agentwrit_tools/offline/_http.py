"""The stand-in's HTTP edge: stdlib ``http.server`` on loopback, OpenAI's paths and error shapes.

Stdlib only, so the stand-in works with nothing but the ``openai`` extra installed. All decisions are made by the
I/O-free modules; this file reads bodies, routes, writes JSON or server-sent events, and turns every failure
into OpenAI's ``{"error": {...}}`` JSON — never an HTML page, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from ._chat import ChatExchange, chat_chunks, chat_completion
from ._errors import InvalidRequest
from ._labels import CREATED, MODEL_ID, OWNED_BY, SERVER_NAME
from ._planner import Planner
from ._responses import ResponsesExchange
from ._wire import body_digest, error_body

__all__ = ["MAX_BODY_BYTES", "StandInHTTPServer"]

logger = logging.getLogger("agentwrit_tools.offline")

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Requests larger than this are refused (413) before being read."""

_IDLE_SECONDS = 15.0
_MODEL = {"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": OWNED_BY}


class StandInHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server holding the planner, the request log and stored Responses conversations.

    Open connections are tracked so :meth:`close` can cut idle keep-alive connections and join every handler
    thread: a test that stops the server leaves no thread and no socket behind.
    """

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128  # socketserver's 5 resets connections when an async client opens twenty at once

    def __init__(
        self,
        address: tuple[str, int],
        planner: Planner,
        *,
        family: socket.AddressFamily = socket.AF_INET,
        max_recorded: int = 256,
        max_stored: int = 256,
    ) -> None:
        self.address_family = family
        self.planner = planner
        self._lock = threading.Lock()
        self._recorded: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self._stored: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._max_stored = max_stored
        self._connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` does for a name nobody reads."""
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log what escaped a handler (a dropped connection, mostly) instead of printing a traceback."""
        logger.debug("stand-in connection from %s failed", client_address, exc_info=True)

    # -- bookkeeping shared by handler threads ------------------------------------------------------------------

    def record(self, body: dict[str, Any]) -> None:
        """Remember a request body (bounded: the oldest are dropped)."""
        with self._lock:
            self._recorded.append(body)

    def recorded(self) -> list[dict[str, Any]]:
        """The remembered request bodies, oldest first."""
        with self._lock:
            return list(self._recorded)

    def clear_recorded(self) -> None:
        """Forget the remembered request bodies."""
        with self._lock:
            self._recorded.clear()

    def store(self, response_id: str, items: list[dict[str, Any]]) -> None:
        """Keep a Responses conversation for ``previous_response_id`` (bounded, least recent dropped)."""
        with self._lock:
            self._stored[response_id] = items
            self._stored.move_to_end(response_id)
            while len(self._stored) > self._max_stored:
                self._stored.popitem(last=False)

    def stored(self, response_id: str) -> Sequence[dict[str, Any]] | None:
        """The conversation items of an earlier response, if still kept."""
        with self._lock:
            return self._stored.get(response_id)

    # -- connection tracking ------------------------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        """Stop accepting, cut open connections, join handler threads, close the socket (after ``shutdown``)."""
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()


_Route = Callable[["_Handler", dict[str, Any]], None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVER_NAME
    sys_version = ""
    timeout = _IDLE_SECONDS
    server: StandInHTTPServer

    # -- routing ------------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_POST

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        try:
            if path == "/v1/models":
                self._expect("GET", path)
                self._send_json(200, {"object": "list", "data": [_MODEL]})
            elif path.startswith("/v1/models/"):
                self._expect("GET", path)
                self._retrieve_model(unquote(path.removeprefix("/v1/models/")))
            elif path in _POST_ROUTES:
                self._expect("POST", path)
                body = self._read_json()
                if body is not None:
                    self.server.record(body)
                    _POST_ROUTES[path](self, body)
            else:
                self._send_error(404, f"Unknown request URL: {self.command} {path or '/'}.", code="unknown_url")
        except InvalidRequest as exc:
            self._send_error(400, exc.message, param=exc.param, code=exc.code)
        except _Rejected:
            pass  # the error response is already written
        except OSError:  # the client went away or stalled past the timeout: nobody to answer
            self.close_connection = True
        except Exception:
            logger.debug("stand-in model failed on %s %s", self.command, path, exc_info=True)
            logger.error("stand-in model failed on %s %s (details at DEBUG level)", self.command, path)
            with contextlib.suppress(OSError):
                self._send_error(500, "The stand-in model failed on this request.", kind="server_error")

    def _expect(self, method: str, path: str) -> None:
        if self.command != method:
            self._send_error(405, f"Method {self.command} is not allowed on {path}; use {method}.")
            raise _Rejected

    def _retrieve_model(self, model: str) -> None:
        if model != MODEL_ID:
            message = f"The model '{model}' does not exist; the stand-in serves '{MODEL_ID}'."
            self._send_error(404, message, code="model_not_found")
        else:
            self._send_json(200, _MODEL)

    # -- the two APIs -------------------------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        exchange = ChatExchange.handle(self.server.planner, body)
        logger.debug("chat completion: rule=%s finish=%s", exchange.decision.rule, exchange.decision.finish_reason)
        if exchange.stream:
            frames = (f"data: {_dumps(chunk)}\n\n" for chunk in chat_chunks(exchange))
            self._send_stream([*frames, "data: [DONE]\n\n"])
        else:
            self._send_json(200, chat_completion(exchange))

    def _responses(self, body: dict[str, Any]) -> None:
        exchange = ResponsesExchange.handle(self.server.planner, body, self.server.stored)
        logger.debug("response: rule=%s finish=%s", exchange.decision.rule, exchange.decision.finish_reason)
        if exchange.store:
            self.server.store(exchange.response["id"], exchange.items)
        if exchange.stream:
            self._send_stream(f"event: {event['type']}\ndata: {_dumps(event)}\n\n" for event in exchange.events())
        else:
            self._send_json(200, exchange.response)

    # -- reading and writing ------------------------------------------------------------------------------------

    def _read_json(self) -> dict[str, Any] | None:
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._send_error(411, "A request body with a Content-Length header is required.")
            return None
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            self._send_error(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
            return None
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._send_error(400, "We could not parse the JSON body of your request: it is not valid JSON.")
            return None
        if not isinstance(body, dict):
            self._send_error(400, "The request body must be a JSON object.")
            return None
        return body

    def _send_json(self, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
        data = _dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + body_digest(payload)[:24])
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_stream(self, frames: Iterable[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for frame in frames:
            data = frame.encode("utf-8")
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        # Close after refusing: the body may not have been read, and the next bytes would be taken for a request.
        self._send_json(status, error_body(message, kind=kind, code=code, param=param), close=status != 400)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, oversized headers) in OpenAI's JSON shape, not HTML."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # an unknown method: the client's mistake, not ours
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"Method {self.command} is not allowed."
        kind = "server_error" if code >= 500 else "invalid_request_error"
        text = message or HTTPStatus(code).phrase
        self._send_json(code, error_body(text, kind=kind), close=True)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class _Rejected(Exception):
    """The request was answered with an error already; stop handling it."""


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


_POST_ROUTES: dict[str, _Route] = {
    "/v1/chat/completions": _Handler._chat,
    "/v1/responses": _Handler._responses,
}
