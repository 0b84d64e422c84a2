"""Starting and stopping the stand-in: loopback only, ports, clean shutdown, bounded recording, the CLI process."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stand_in_support import RULES

from agentwrit_tools.offline import MODEL_ID, StandInError, StandInModel
from agentwrit_tools.offline._cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_the_basics_a_demo_needs() -> None:
    with StandInModel(RULES) as model:
        assert model.base_url == f"http://127.0.0.1:{model.port}/v1"
        assert model.port > 0
        assert model.model == MODEL_ID
        assert "not a language model" in repr(model)
        settings = model.settings
        assert (settings.base_url, settings.model, settings.stand_in) == (model.base_url, MODEL_ID, True)
    assert "not running" in repr(model)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", ""])  # noqa: S104 - refused, not bound
def test_only_loopback_hosts_are_accepted(host: str) -> None:
    with pytest.raises(StandInError, match="loopback only"):
        StandInModel(RULES, host=host)


def test_localhost_and_ipv6_loopback_work() -> None:
    with StandInModel(RULES, host="localhost") as model:
        assert model.base_url.startswith("http://localhost:")
        with httpx.Client() as client:
            assert client.get(model.base_url + "/models").status_code == 200
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        model6 = StandInModel(RULES, host="::1").start()
    except StandInError:
        pytest.skip("IPv6 loopback not usable here")
    with model6, httpx.Client() as client:
        assert model6.base_url == f"http://[::1]:{model6.port}/v1"
        assert client.get(model6.base_url + "/models").json()["data"][0]["id"] == MODEL_ID


def test_a_taken_port_is_a_clear_error(busy_port: int) -> None:
    with pytest.raises(StandInError, match=f"cannot listen on 127.0.0.1:{busy_port}: address already in use"):
        StandInModel(RULES, port=busy_port).start()


def test_close_releases_the_port_even_with_idle_keep_alive_connections() -> None:
    model = StandInModel(RULES).start()
    port = model.port
    client = httpx.Client()
    try:
        assert client.get(model.base_url + "/models").status_code == 200  # the connection stays pooled
        started = time.monotonic()
        model.close()
        assert time.monotonic() - started < 2
        model.close()  # twice is fine
    finally:
        client.close()
    with StandInModel(RULES, port=port) as again:
        assert again.port == port


def test_start_is_idempotent_and_properties_need_a_running_server() -> None:
    model = StandInModel(RULES)
    with pytest.raises(StandInError, match="not running"):
        _ = model.base_url
    with model:
        assert model.start() is model
        port = model.port
        assert model.port == port
    with pytest.raises(StandInError, match="not running"):
        _ = model.requests


def test_recorded_requests_are_bounded_and_clearable() -> None:
    with StandInModel(RULES, max_recorded=2) as model, httpx.Client(base_url=model.base_url) as client:
        for text in ("one", "two", "three"):
            client.post("/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": text}]})
        client.post("/chat/completions", content=b"{broken")  # not JSON: not recorded
        assert [body["messages"][0]["content"] for body in model.requests] == ["two", "three"]
        model.requests.clear()  # a copy: the model's own record is untouched
        assert len(model.requests) == 2
        model.clear_requests()
        assert model.requests == []


def test_rules_can_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps([{"name": "hi", "when": "(?i)hello", "answer": "Hi from a file."}]),
        encoding="utf-8",
    )
    with StandInModel(path) as model, httpx.Client(base_url=model.base_url) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        answer = client.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    assert answer == "[stand-in model] Hi from a file."


def test_cli_port_in_use_is_one_line(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stand-in", "serve", "--port", str(busy_port)]) == 2
    out = capsys.readouterr()
    assert (
        out.err == f"agentwrit-tools stand-in: error: cannot listen on 127.0.0.1:{busy_port}: address already in use\n"
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serves_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"name": "hi", "when": "(?i)hello", "answer": "Hi."}]), encoding="utf-8")
    code = "import sys; from agentwrit_tools.offline._cli import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "stand-in", "serve", "--port", "0", "--rules", str(rules)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            assert "stand-in model (rule-based, not a language model)" in banner
            assert "with 1 rule" in banner
            base_url = banner.split(" at ")[1].split()[0]
            with httpx.Client(base_url=base_url) as client:
                body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
                reply = client.post("/chat/completions", json=body).json()
            assert reply["choices"][0]["message"]["content"] == "[stand-in model] Hi."
            process.send_signal(stop)
            out, err = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0
    assert out.strip().endswith("stand-in model stopped")
    assert err == ""
