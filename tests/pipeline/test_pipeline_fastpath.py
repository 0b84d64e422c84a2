"""A stage's tool call on the fast path, and the run's launch tokens ending with it — checked through the broker.

On the call's path: the registration of its agent and the stage's delegation to it (the nonce and the stage's
launch token were fetched ahead), then the guard's release — three round trips. The registration token's release
happens off the path, and the run does not report itself done before it went through. The launch tokens the run
used (the ceiling's, each stage's) are revoked with the run on our broker; against the reference contract they
are reported, still alive for a short while.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_support import APP_SCOPES, CEILING, KNOWLEDGE, TRIAGE, ended, issued
from pipeline_support import support_tools as tools_for
from support import Recorder, assert_dead, registers_with

from agentwrit_tools import AsyncBroker, Broker
from agentwrit_tools.pipeline import Pipeline, PipelineResult, Stage, StageContext
from agentwrit_tools.trace import LaunchTokenIssued, LaunchTokensEnded, Minted


@pytest.fixture(scope="module", params=["extensions", "reference"])
def either_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from agentwrit_tools.broker import EmbeddedBroker

    db = Path(tmp_path_factory.mktemp(request.param)) / "broker.db"
    with EmbeddedBroker(db_path=db, extensions=request.param == "extensions") as running:
        yield running


@pytest.fixture
def clients(either_broker: Any) -> Iterator[tuple[Broker, Broker]]:
    app = either_broker.create_app(f"fast-{secrets.token_hex(4)}", APP_SCOPES)
    with (
        Broker(either_broker.url, app.client_id, app.client_secret) as client,
        Broker(either_broker.url, admin_secret=either_broker.admin_secret) as operator,
    ):
        yield client, operator


def _desk(recorder: Recorder, calls: int = 3) -> Pipeline:
    tools = tools_for(recorder)

    def body(name: str, tool: str, arguments: dict[str, str]) -> Any:
        def run(ctx: StageContext) -> Any:
            recorder.saw(f"stage:{name}", ctx.credential)
            time.sleep(0.15)  # the stage's model answers before its first tool call: the prefetch is done by then
            for _ in range(calls):
                assert ctx.call(tools[tool], arguments).ok
            return ctx.input

        return run

    return Pipeline(
        [
            Stage("triage", TRIAGE, body("triage", "read_ticket", {"ticket_id": "T-1"})),
            Stage("knowledge", KNOWLEDGE, body("knowledge", "search_kb", {"article": "kb-1"})),
        ]
    )


def _still_registers(url: str, launch_token: str, task_id: str) -> bool:
    return registers_with(url, launch_token, task_id, "read:kb:probe", orch_id="desk") == 200


def _launch_tokens_of(result: PipelineResult) -> tuple[list[LaunchTokenIssued], LaunchTokensEnded]:
    issued_events = [e for e in result.events if isinstance(e, LaunchTokenIssued)]
    ended_events = [e for e in result.events if isinstance(e, LaunchTokensEnded)]
    assert len(ended_events) == 1
    return issued_events, ended_events[0]


def test_a_stage_tool_call_costs_three_round_trips_on_its_path(
    either_broker: Any, clients: tuple[Broker, Broker]
) -> None:
    client, operator = clients
    recorder = Recorder()
    task_id = f"fast-{secrets.token_hex(4)}"
    result = _desk(recorder).run(client, None, orch_id="desk", task_id=task_id, ceiling=CEILING)
    minted = [e for e in result.events if isinstance(e, Minted)]
    assert len(minted) == 6
    # register + delegate (+ each token verified by validate on the reference contract), then the release.
    on_path = 2 if either_broker.settings.extensions else 4
    assert [e.round_trips for e in minted] == [on_path] * 6
    assert all(set(e.prefetched) == {"nonce", "launch_token"} for e in minted)
    # The registration tokens released off the path were released before the run reported done.
    assert all(record.released for record in result.minted)
    assert issued(operator, task_id) <= ended(operator, task_id)
    assert_dead(operator, recorder.seen)


def test_the_runs_launch_tokens_end_with_it(either_broker: Any, clients: tuple[Broker, Broker]) -> None:
    client, _ = clients
    task_id = f"fast-{secrets.token_hex(4)}"
    captured: list[Any] = []
    pipeline = _desk(Recorder(), calls=1)
    original = client.task_launcher

    def capturing(*args: Any, **kwargs: Any) -> Any:
        launcher = original(*args, **kwargs)
        captured.append(launcher)
        return launcher

    client.task_launcher = capturing  # type: ignore[method-assign]
    result = pipeline.run(client, None, orch_id="desk", task_id=task_id, ceiling=CEILING)
    tokens = [issued_.token for launcher in captured for issued_ in launcher._launch.issued]
    issued_events, ended_event = _launch_tokens_of(result)
    assert len(tokens) == len(issued_events) == 3  # the ceiling's, triage's, knowledge's
    if either_broker.settings.extensions:
        assert (ended_event.revoked, ended_event.unrevocable) == (3, 0)
        assert not any(_still_registers(either_broker.url, token, task_id) for token in tokens)
    else:
        assert (ended_event.revoked, ended_event.unrevocable) == (0, 3)
        assert ended_event.expires is not None
        assert ended_event.expires <= time.time() + 31
        assert all(not e.revocable for e in issued_events)


@pytest.mark.anyio
async def test_the_async_run_releases_off_the_path_and_ends_its_launch_tokens(either_broker: Any) -> None:
    app = either_broker.create_app(f"fast-{secrets.token_hex(4)}", APP_SCOPES)
    recorder = Recorder()
    tools = tools_for(recorder)
    task_id = f"fast-{secrets.token_hex(4)}"

    async def knowledge(ctx: StageContext) -> Any:
        for n in range(3):
            assert (await ctx.acall(tools["search_kb"], {"article": f"kb-{n}"})).ok
        return None

    async with AsyncBroker(either_broker.url, app.client_id, app.client_secret) as client:
        result = await Pipeline([Stage("knowledge", KNOWLEDGE, knowledge)]).arun(
            client, None, orch_id="desk", task_id=task_id, ceiling=CEILING
        )
    assert all(record.released for record in result.minted)
    _, ended_event = _launch_tokens_of(result)
    assert ended_event.revoked == (2 if either_broker.settings.extensions else 0)
    with Broker(either_broker.url, admin_secret=either_broker.admin_secret) as operator:
        assert issued(operator, task_id) <= ended(operator, task_id)
        assert_dead(operator, recorder.seen)
