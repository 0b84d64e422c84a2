"""Every refusal is OpenAI's error JSON, so clients raise their typed errors; nothing is HTML or a traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stand_in_support import CHAT_TOOLS

from agentwrit_tools.offline import Conversation, Decision, Planner, RuleSet, StandInModel, ToolOffer
from agentwrit_tools.offline._http import MAX_BODY_BYTES, StandInHTTPServer

openai = pytest.importorskip("openai")


@pytest.fixture
def http(stand_in: StandInModel) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stand_in.base_url.removesuffix("/v1")) as client:
        yield client


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert "Traceback" not in response.text
    return dict(error)


def test_bad_fields_raise_bad_request_error_in_the_real_client(client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=[])
    assert caught.value.status_code == 400
    assert caught.value.param == "messages"
    assert caught.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="preceding message with 'tool_calls'"):
        client.chat.completions.create(model="m", messages=[{"role": "tool", "tool_call_id": "call_1", "content": "x"}])


def test_forgetting_a_tool_result_fails_like_the_real_api(client: Any) -> None:
    first = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "record of P-1"}], tools=CHAT_TOOLS
    )
    with pytest.raises(openai.BadRequestError, match="did not have response messages"):
        client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": "record of P-1"},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "user", "content": "well?"},
            ],
            tools=CHAT_TOOLS,
        )


def test_unknown_paths_and_models_raise_not_found(client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/assistants", cast_to=object)
    assert caught.value.code == "unknown_url"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found"


def test_malformed_json_is_a_400_in_openai_shape_and_the_server_keeps_serving(http: httpx.Client) -> None:
    for content in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"'):
        response = http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
        assert assert_openai_error(response, 400)["type"] == "invalid_request_error"
    response = http.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200


def test_unknown_path_wrong_method_and_missing_length(http: httpx.Client) -> None:
    assert assert_openai_error(http.post("/v1/embeddings", json={}), 404)["code"] == "unknown_url"
    assert assert_openai_error(http.get("/"), 404)["code"] == "unknown_url"
    assert "use POST" in assert_openai_error(http.get("/v1/chat/completions"), 405)["message"]
    assert "use GET" in assert_openai_error(http.delete("/v1/models"), 405)["message"]
    assert assert_openai_error(http.request("BREW", "/v1/models"), 405)["type"] == "invalid_request_error"

    def chunked() -> Iterator[bytes]:
        yield b'{"model": "m"}'

    assert "Content-Length" in assert_openai_error(http.post("/v1/responses", content=chunked()), 411)["message"]


def raw_exchange(stand_in: StandInModel, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", stand_in.port), timeout=5) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def test_oversized_bodies_and_garbage_request_lines_get_json_not_html(stand_in: StandInModel) -> None:
    too_big = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
    reply = raw_exchange(stand_in, too_big)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b'"error"' in reply
    garbage = raw_exchange(stand_in, b"GET /v1/models extra HTTP/1.1\r\n\r\n")
    assert garbage.split(b"\r\n")[0].startswith(b"HTTP/1.1 400")
    assert b'"error"' in garbage
    assert b"<html" not in garbage.lower()
    one_word = raw_exchange(stand_in, b"HELLO\r\n\r\n")  # HTTP/0.9 style: no status line, still JSON
    assert one_word.startswith(b'{"error"')


class ExplodingPlanner(Planner):
    def decide(self, conversation: Conversation, offer: ToolOffer) -> Decision:
        raise RuntimeError("secret internal detail")


def test_an_internal_failure_is_a_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    server = StandInHTTPServer(("127.0.0.1", 0), ExplodingPlanner(RuleSet()))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with (
            openai.OpenAI(
                base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="stand-in", max_retries=0
            ) as client,
            pytest.raises(openai.InternalServerError) as caught,
        ):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    finally:
        server.shutdown()
        thread.join()
        server.close()
    assert caught.value.status_code == 500
    assert "secret internal detail" not in str(caught.value.body)
    assert "Traceback" not in str(caught.value.body)
    assert "failed on POST /v1/chat/completions" in caplog.text


def test_a_truncated_body_is_a_bad_request(stand_in: StandInModel) -> None:
    with socket.create_connection(("127.0.0.1", stand_in.port), timeout=5) as connection:
        connection.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"model"')
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"not valid JSON" in reply


def test_a_stalled_client_is_dropped_quietly(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from agentwrit_tools.offline import _http

    monkeypatch.setattr(_http._Handler, "timeout", 0.3)
    with StandInModel(RuleSet()) as model, socket.create_connection(("127.0.0.1", model.port), timeout=5) as connection:
        connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert connection.recv(65536) == b""  # closed by the server after its timeout, no half-made answer
    assert "Traceback" not in capfd.readouterr().err
