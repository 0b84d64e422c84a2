"""The client's HTTP/1.1 codec, with no sockets: what a request looks like on the wire, and every answer shape the
parser takes (length, chunked, read to close, interim 1xx) or refuses (malformed, oversized, encoded)."""

from __future__ import annotations

import pytest

from agentwrit_tools.client._http11 import Origin, ResponseParser, WireViolation, encode_request


def _parse(*pieces: bytes, method: str = "GET", max_body: int = 1 << 20) -> ResponseParser:
    parser = ResponseParser(method, max_body=max_body)
    done = False
    for piece in pieces:
        done = parser.feed(piece)
    assert done, "the response should be complete"
    return parser


def test_a_request_is_one_buffer_with_host_length_and_quoted_target() -> None:
    origin = Origin.parse("http://127.0.0.1:8080/broker")
    raw = encode_request(
        origin,
        "POST",
        "/v1/admin/apps/a b",
        params={"after": 3, "task_id": "t&x"},
        headers=[("Authorization", "Bearer abc")],
        content=b'{"x":1}',
    )
    head, body = raw.split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /broker/v1/admin/apps/a%20b?after=3&task_id=t%26x HTTP/1.1"
    assert "Host: 127.0.0.1:8080" in lines
    assert "Authorization: Bearer abc" in lines
    assert "Content-Length: 7" in lines
    assert body == b'{"x":1}'


def test_default_ports_are_left_out_of_the_host_header() -> None:
    assert Origin.parse("https://broker.example").authority == "broker.example"
    assert Origin.parse("https://broker.example").port == 443
    assert Origin.parse("http://[::1]:9000").authority == "[::1]:9000"


def test_a_header_that_would_split_the_request_is_refused() -> None:
    origin = Origin.parse("http://127.0.0.1:8080")
    with pytest.raises(ValueError, match="not sendable"):
        encode_request(origin, "GET", "/", params=None, headers=[("X-Id", "a\r\nEvil: 1")], content=None)


def test_content_length_body_arriving_in_pieces() -> None:
    parser = ResponseParser("POST")
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len")
    assert not parser.feed(b'gth: 10\r\nX-Request-ID: r1\r\n\r\n{"a":')
    assert parser.feed(b' "b"}')
    assert parser.response is not None
    assert parser.response.status == 200
    assert parser.response.content == b'{"a": "b"}'
    assert parser.response.headers["x-request-id"] == "r1"
    assert parser.keep_alive


def test_chunked_body_with_extensions_and_trailers() -> None:
    parser = _parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"4;ext=1\r\nabcd\r\n",
        b"3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    assert parser.response is not None
    assert parser.response.content == b"abcdefg"
    assert parser.keep_alive


def test_a_body_without_length_is_read_to_the_end_of_the_connection() -> None:
    parser = ResponseParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\n\r\npart one, ")
    assert not parser.feed(b"part two")
    assert parser.eof()
    assert parser.response is not None
    assert parser.response.content == b"part one, part two"
    assert not parser.keep_alive


def test_interim_answers_are_skipped_and_no_body_statuses_have_none() -> None:
    parser = _parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-Request-ID: r\r\n\r\n")
    assert parser.response is not None
    assert parser.response.status == 204
    assert parser.response.content == b""
    head = _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", method="HEAD")
    assert head.response is not None
    assert head.response.content == b""


def test_connection_close_and_http10_are_not_kept_alive() -> None:
    assert not _parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert not _parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive
    assert _parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive


def test_bytes_after_the_response_make_the_connection_unusable() -> None:
    parser = _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
    assert parser.response is not None
    assert parser.response.content == b"ok"
    assert not parser.keep_alive


def test_repeated_headers_are_joined_and_names_are_lower_case() -> None:
    parser = _parse(b"HTTP/1.1 429 Too Many\r\nRetry-After: 1\r\nVary: a\r\nVARY: b\r\nContent-Length: 0\r\n\r\n")
    assert parser.response is not None
    assert parser.response.headers == {"retry-after": "1", "vary": "a, b", "content-length": "0"}


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
def test_malformed_answers_are_refused(raw: bytes) -> None:
    with pytest.raises(WireViolation):
        ResponseParser().feed(raw)


def test_sizes_are_bounded() -> None:
    with pytest.raises(WireViolation, match="too large"):
        ResponseParser(max_body=10).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    with pytest.raises(WireViolation, match="too large"):
        ResponseParser(max_body=10).feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n")
    with pytest.raises(WireViolation, match="too large"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000)
    parser = ResponseParser(max_body=10)
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(WireViolation, match="too large"):
        parser.feed(b"x" * 11)


def test_a_response_cut_short_is_an_error_not_an_answer() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert parser.started
    with pytest.raises(WireViolation, match="closed before"):
        parser.eof()
    assert not ResponseParser().started
