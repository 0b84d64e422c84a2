"""The demo kit's own promises, apart from any one demo's story."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from demo_support import served

import demo_medassist
from agentwrit_tools import Broker, BrokerUnavailable
from agentwrit_tools.demo import TokenWitness, check_tokens
from agentwrit_tools.demo import _events as kit_events
from agentwrit_tools.demo._describe import _BUILDERS
from agentwrit_tools.demo._hub import sse_message
from agentwrit_tools.pipeline import PIPELINE_EVENT_TYPES
from agentwrit_tools.trace import EVENT_TYPES


def test_every_event_type_has_words_of_its_own() -> None:
    kit = {cls.type for cls in vars(kit_events).values() if isinstance(cls, type) and hasattr(cls, "type")}
    kit.discard("event")
    described = set(_BUILDERS) | {"scenario_finished"}  # the summary is shown by the exposure panel instead
    assert set(EVENT_TYPES) | set(PIPELINE_EVENT_TYPES) | kit <= described


def test_an_sse_message_keeps_multi_line_html_as_one_event() -> None:
    message = sse_message("trace", "<li>\n  a\n</li>")
    assert message == "event: trace\ndata: <li>\ndata:   a\ndata: </li>\n\n"


def test_the_final_check_counts_a_live_token_and_then_a_released_one_as_dead(broker: Any, operator: Broker) -> None:
    app = operator.admin.create_app("kit-check", ["read:records:*"])
    with Broker(broker.url, app.client_id, app.client_secret) as client:
        credential = client.mint("read:records:P-1", orch_id="kit", task_id="kit-check", ttl=30)
        witness = TokenWitness()
        witness.saw(credential)
        witness.saw(credential)  # the same token twice is one token
        told: list[tuple[str, bool]] = []
        alive = check_tokens(client, witness, on_token=lambda seen, live: told.append((seen.jti, live)))
        assert (alive.checked, alive.alive) == (1, (credential.claims.jti,))
        assert told == [(credential.claims.jti, True)]
        credential.release()
        dead = check_tokens(client, witness)
        assert (dead.checked, dead.live_credentials) == (1, 0)


def test_the_final_check_fails_rather_than_passes_when_the_broker_is_gone() -> None:
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker() as running:
        app = running.create_app("kit-gone", ["read:records:*"])
        client = Broker(running.url, app.client_id, app.client_secret, timeout=2)
        credential = client.mint("read:records:P-1", orch_id="kit", task_id="kit-gone", ttl=30)
        witness = TokenWitness()
        witness.saw(credential)
    with client, pytest.raises(BrokerUnavailable):
        check_tokens(client, witness)


def test_a_run_stream_replays_from_last_event_id_and_ends_with_done() -> None:
    with served(demo_medassist.DEMO) as (url, _stack), httpx.Client(base_url=url, timeout=30) as http:
        started = http.post("/runs", data={"scenario": "happy-path"})
        assert started.status_code == 200
        run_id = re.search(r'data-run="([0-9a-f]+)"', started.text)
        assert run_id
        whole = http.get(f"/runs/{run_id.group(1)}/events")
        assert whole.headers["content-type"].startswith("text/event-stream")
        ids = [int(i) for i in re.findall(r"^id: (\d+)$", whole.text, re.MULTILINE)]
        assert ids == list(range(1, len(ids) + 1))
        assert whole.text.rstrip().endswith("event: done\ndata: done")
        assert "event: verdict" in whole.text
        assert "event: exposure" in whole.text
        tail = http.get(f"/runs/{run_id.group(1)}/events", headers={"Last-Event-ID": str(ids[-3])})
        assert re.findall(r"^id: (\d+)$", tail.text, re.MULTILINE) == [str(ids[-2]), str(ids[-1])]
        assert "event: done" in http.get("/runs/unknown/events").text
        assert http.get("/kit-static/htmx.min.js").status_code == 200
        assert http.get("/kit-static/..%2Fpyproject.toml").status_code == 404
        assert http.post("/runs", data={"scenario": "no-such"}).status_code == 404


def test_the_stack_uses_a_broker_and_a_model_named_by_the_environment(broker: Any, operator: Broker) -> None:
    from agentwrit_tools.demo import DemoStack, run_scenario
    from agentwrit_tools.offline import StandInModel

    # Any OpenAI-compatible endpoint will do as "the real model" here; the rule-based one is the one that runs.
    with StandInModel(demo_medassist.DEMO.rules) as endpoint:
        environ = {
            "AGENTWRIT_BROKER_URL": broker.url,
            "AGENTWRIT_ADMIN_SECRET": broker.admin_secret,
            "LLM_BASE_URL": endpoint.base_url,
            "LLM_MODEL": "clinic-model-1",
        }
        with DemoStack(demo_medassist.DEMO, environ=environ) as stack:
            assert stack.broker_url == broker.url
            assert stack.model.stand_in is False
            assert stack.model.model == "clinic-model-1"
            assert "clinic-model-1" in stack.model_where
            outcome = run_scenario(stack, demo_medassist.DEMO.scenario("happy-path"), lambda _name, _event: None)
            assert outcome.passed
            assert any(r.get("model") == "clinic-model-1" for r in endpoint.requests)
            assert any(app.app_id == stack.app_id for app in operator.admin.list_apps())
            answers = [e for e in outcome.events if e.type == "answer"]
            assert answers
            assert not any(getattr(e, "stand_in", True) for e in answers)


def test_a_broker_url_without_the_admin_secret_is_a_clear_error() -> None:
    from agentwrit_tools.demo import DemoError, DemoStack

    with pytest.raises(DemoError, match="AGENTWRIT_ADMIN_SECRET is not"):
        DemoStack(demo_medassist.DEMO, environ={"AGENTWRIT_BROKER_URL": "http://127.0.0.1:9"}).start()


def test_medassist_runs_against_a_broker_that_issues_bearer_tokens_only() -> None:
    from agentwrit_tools.broker import EmbeddedBroker
    from agentwrit_tools.demo import DemoStack, run_scenario

    with EmbeddedBroker(extensions=False) as reference:
        environ = {"AGENTWRIT_BROKER_URL": reference.url, "AGENTWRIT_ADMIN_SECRET": reference.admin_secret}
        with DemoStack(demo_medassist.DEMO, environ=environ) as stack:
            assert stack.key_bound is False
            for name in ("happy-path", "cross-patient", "stolen-token"):
                outcome = run_scenario(stack, demo_medassist.DEMO.scenario(name), lambda _name, _event: None)
                assert outcome.passed, (name, outcome.failures, outcome.error)
            notes = [e for e in outcome.events if e.type == "note"]
            assert any("bearer tokens only" in getattr(e, "text", "") for e in notes)
