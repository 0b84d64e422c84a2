"""Against a broker without the extensions (as a real AgentWrit broker): no cascade, so the run must release
every credential itself — and does, leaves first, however it ends."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_support import APP_SCOPES, CEILING, KNOWLEDGE, TRIAGE, ended, issued
from pipeline_support import support_tools as tools_for
from support import Recorder, assert_dead, audit, is_dead

from agentwrit_tools import Broker
from agentwrit_tools.pipeline import Pipeline, Stage, StageContext


@pytest.fixture(scope="module")
def plain_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from agentwrit_tools.broker import EmbeddedBroker

    with EmbeddedBroker(db_path=Path(tmp_path_factory.mktemp("plain")) / "broker.db", extensions=False) as running:
        yield running


@pytest.fixture(scope="module")
def plain_operator(plain_broker: Any) -> Iterator[Broker]:
    with Broker(plain_broker.url, admin_secret=plain_broker.admin_secret) as client:
        yield client


@pytest.fixture
def plain_client(plain_broker: Any) -> Iterator[Broker]:
    app = plain_broker.create_app(f"plain-{secrets.token_hex(4)}", APP_SCOPES)
    with Broker(plain_broker.url, app.client_id, app.client_secret) as client:
        yield client


def desk(recorder: Recorder, *, fail_in: str | None = None) -> Pipeline:
    tools = tools_for(recorder)

    def body(name: str, tool: str, arguments: dict[str, str]) -> Any:
        def run(ctx: StageContext) -> Any:
            recorder.saw(f"stage:{name}", ctx.credential)
            assert ctx.call(tools[tool], arguments).ok
            if name == fail_in:
                raise LookupError(name)
            return ctx.input

        return run

    return Pipeline(
        [
            Stage("triage", TRIAGE, body("triage", "read_ticket", {"ticket_id": "T-1"})),
            Stage("knowledge", KNOWLEDGE, body("knowledge", "search_kb", {"article": "kb-1"})),
            Stage("response", "write:replies:T-1", body("response", "post_reply", {"ticket_id": "T-1", "text": "x"})),
        ]
    )


def assert_each_released_by_itself(operator: Broker, task_id: str, recorder: Recorder) -> None:
    assert_dead(operator, recorder.seen)
    minted = issued(operator, task_id)
    released = {e.resource for e in audit(operator, task_id, "token_released")}
    assert minted == released  # every single one released on its own: nothing here cascades
    assert audit(operator, task_id, "token_revoked") == []
    assert ended(operator, task_id) == minted


def test_a_completed_run_releases_every_credential_itself(plain_client: Broker, plain_operator: Broker) -> None:
    recorder = Recorder(validate=plain_operator.validate)
    task_id = f"task-{secrets.token_hex(6)}"
    result = desk(recorder).run(plain_client, "T-1", orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert result.completed
    assert [len(s.validated.delegation_chain) for s in recorder.seen if not s.label.startswith("stage:")] == [1, 2, 3]
    assert_each_released_by_itself(plain_operator, task_id, recorder)
    # 3 stage tokens + 2 stage agents' registrations + 3 calls x (credential + its agent's registration)
    assert len(result.minted) == 3 + 2 + 3 * 2


def test_a_failed_run_releases_every_credential_itself(plain_client: Broker, plain_operator: Broker) -> None:
    recorder = Recorder()
    task_id = f"task-{secrets.token_hex(6)}"
    with pytest.raises(LookupError):
        desk(recorder, fail_in="knowledge").run(plain_client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert {s.label for s in recorder.seen} == {"stage:triage", "read_ticket", "stage:knowledge", "search_kb"}
    assert_each_released_by_itself(plain_operator, task_id, recorder)


def test_here_a_released_stage_does_not_take_its_delegates_with_it(
    plain_client: Broker, plain_operator: Broker
) -> None:
    """Why the run releases each credential itself: without cascade, the delegate would outlive its delegator."""
    held: dict[str, Any] = {}
    observed: dict[str, bool] = {}

    def knowledge(ctx: StageContext) -> None:
        assert held["triage"].release()
        observed["knowledge alive"] = not is_dead(plain_operator, ctx.credential.access_token)
        held["knowledge"] = ctx.credential.access_token

    pipeline = Pipeline(
        [
            Stage("triage", TRIAGE, lambda ctx: held.update(triage=ctx.credential)),
            Stage("knowledge", KNOWLEDGE, knowledge),
        ]
    )
    task_id = f"task-{secrets.token_hex(6)}"
    pipeline.run(plain_client, orch_id="desk", task_id=task_id, ceiling=CEILING)
    assert observed == {"knowledge alive": True}
    assert is_dead(plain_operator, held["knowledge"])  # the run released it
