"""The committed cassettes hold model traffic only — no API key, no broker token — and replay cannot reach out."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
import yaml
from model_cassettes import CASSETTES, MODEL_PATHS, REPLAY_BASE_URL, _model_requests_only, model_cassette, recording
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

CASSETTE_FILES = sorted(CASSETTES.glob("*.yaml"))
TEST_SOURCES = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))

# A compact JWS (every broker token is one), bearer credentials, OpenAI-style keys, launch tokens/secrets as hex.
SECRET_SHAPES = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)bearer\s"),
    re.compile(r"(?i)authorization"),
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"\b[0-9a-f]{48,}\b"),
]


def test_there_are_cassettes_and_each_is_used_by_a_test() -> None:
    assert len(CASSETTE_FILES) >= 3
    for path in CASSETTE_FILES:
        assert f'model_cassette("{path.stem}")' in TEST_SOURCES, f"{path.name} is not used by any test"


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda p: p.stem)
def test_cassettes_hold_model_traffic_only_and_no_secrets(path: Path) -> None:
    text = path.read_text()
    for shape in SECRET_SHAPES:
        assert not shape.search(text), f"{path.name} contains something shaped like a secret ({shape.pattern})"
    interactions = yaml.safe_load(text)["interactions"]
    assert interactions
    for interaction in interactions:
        request, response = interaction["request"], interaction["response"]
        assert request["uri"].endswith(MODEL_PATHS), request["uri"]
        assert request["uri"].startswith("http://recorded-model.invalid/")
        assert {name.lower() for name in request["headers"]} <= {"content-type"}
        assert {name.lower() for name in response["headers"]} <= {"content-type"}


def test_only_model_requests_are_recorded_and_without_their_headers() -> None:
    headers = {"Authorization": "Bearer sk-not-a-real-key", "Content-Type": "application/json", "OpenAI-Project": "p"}
    kept = _model_requests_only(Request("POST", "http://127.0.0.1:5555/v1/chat/completions", b"{}", headers))
    assert dict(kept.headers) == {"Content-Type": "application/json"}
    assert kept.uri == "http://recorded-model.invalid/v1/chat/completions"
    for broker_path in ("/v1/register", "/v1/token/validate", "/v1/token/release", "/v1/app/auth"):
        assert _model_requests_only(Request("POST", f"http://127.0.0.1:5555{broker_path}", b"{}", headers)) is None


@pytest.mark.skipif(recording(), reason="replay only")
def test_replay_refuses_an_exchange_that_was_not_recorded() -> None:
    with (
        model_cassette("chat_loop_record") as endpoint,
        openai.OpenAI(base_url=endpoint.base_url, api_key="replay", max_retries=0) as model,
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        model.chat.completions.create(model="m", messages=[{"role": "user", "content": "not in the cassette"}])
    assert endpoint.base_url == REPLAY_BASE_URL
