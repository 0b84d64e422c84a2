"""Recorded model exchanges (vcrpy cassettes) for the adapter tests.

Three modes, chosen by the environment:

* default — **replay**: the model's answers come from ``cassettes/<name>.yaml``; no model server runs, and the
  client points at a host that does not exist, so an exchange missing from the cassette fails loudly instead of
  reaching a network. The broker is live (embedded, loopback) in every mode: it is never recorded.
* ``AGENTWRIT_RECORD=1`` — **record from the stand-in**: the cassette is rewritten from a live
  :class:`~agentwrit_tools.offline.StandInModel`.
* ``AGENTWRIT_RECORD=1`` with ``LLM_BASE_URL`` and/or ``OPENAI_API_KEY`` (``LLM_MODEL`` optional) — **record
  from a real model**.

Only model traffic is recorded: requests whose path ends in ``/chat/completions`` or ``/responses``. Everything
else (the broker's token traffic) is let through live and never written. Recorded requests keep only their
``content-type`` header (no ``Authorization``, no organisation or client fingerprint headers) and their path
(not the stand-in's random port or a private host); responses keep only their ``content-type``. Requests match
on method, the API endpoint and the JSON body without ``model`` — not host or port, and not the model's name
(a cassette recorded from a real model replays under any name).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import vcr
from adapter_support import RULES

from agentwrit_tools.offline import StandInModel, model_settings_from_env

CASSETTES = Path(__file__).parent / "cassettes"
MODEL_PATHS = ("/chat/completions", "/responses")
RECORDED_ORIGIN = "http://recorded-model.invalid"
REPLAY_BASE_URL = f"{RECORDED_ORIGIN}/v1"
KEPT_HEADERS = {"content-type"}


@dataclass(frozen=True)
class ModelEndpoint:
    """Where the test's OpenAI client should go, and what it is talking to."""

    base_url: str
    api_key: str = "replay"
    model: str = "agentwrit-stand-in"
    mode: str = "replay"


def recording() -> bool:
    return os.environ.get("AGENTWRIT_RECORD") == "1"


def _endpoint(path: str) -> str | None:
    return next((suffix for suffix in MODEL_PATHS if path.endswith(suffix)), None)


def _model_requests_only(request: Any) -> Any:
    if _endpoint(request.path) is None:
        return None  # the broker: passed through live, never recorded
    request.headers = {k: v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS}
    request.uri = f"{RECORDED_ORIGIN}{request.path}"  # the stand-in's random port (or a private host) is noise
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() in KEPT_HEADERS}
    return response


def _same_endpoint(r1: Any, r2: Any) -> None:
    assert _endpoint(r1.path) == _endpoint(r2.path)


def _body(request: Any) -> Any:
    raw = request.body or b"{}"
    data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    if isinstance(data, dict):
        data.pop("model", None)
    return data


def _same_body(r1: Any, r2: Any) -> None:
    assert _body(r1) == _body(r2)


def _vcr(record: bool) -> vcr.VCR:
    recorder = vcr.VCR(
        record_mode="all" if record else "none",
        match_on=["method", "endpoint", "json_body"],
        before_record_request=_model_requests_only,
        before_record_response=_scrub_response,
        decode_compressed_response=True,
    )
    recorder.register_matcher("endpoint", _same_endpoint)
    recorder.register_matcher("json_body", _same_body)
    return recorder


@contextmanager
def model_cassette(name: str) -> Iterator[ModelEndpoint]:
    """Replay (or, with ``AGENTWRIT_RECORD=1``, record) the model exchanges of one test."""
    path = CASSETTES / f"{name}.yaml"
    if not recording():
        if not path.exists():
            pytest.fail(f"cassette {path.name} is missing: record it with AGENTWRIT_RECORD=1")
        with _vcr(record=False).use_cassette(str(path)):
            yield ModelEndpoint(REPLAY_BASE_URL)
        return
    path.unlink(missing_ok=True)  # a fresh recording, not appended to an old one
    settings = model_settings_from_env()
    with _vcr(record=True).use_cassette(str(path)):
        if settings is None:
            with StandInModel(RULES) as model:
                yield ModelEndpoint(model.base_url, "stand-in", model.model, "stand-in")
        else:
            yield ModelEndpoint(
                settings.base_url or "https://api.openai.com/v1", settings.api_key, settings.model, "real"
            )
