"""What the fast path fetches ahead, checked through the broker (not the client's memory), on both brokers.

* A guarded call costs two round trips on its path: the registration (its nonce and its task's launch token were
  fetched ahead) and the release — three against the reference contract, which has no JWKS, so the issued token is
  verified by one more request.
* Prefetched nonces are used at most once and never after they expire: the broker refuses a reused or expired
  nonce, and it refuses none.
* A task's launch tokens die with it: revoked when it ends on our broker (also when an operator revokes the task);
  on the reference contract, where nothing can revoke them, short-lived and reported by the trace — and the broker
  refuses each once it expires.
* Cancelling a call mid-body still releases its credential, and the task still ends its launch tokens.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support import Recorder, assert_dead, is_dead, registers_with

from agentwrit_tools import AsyncBroker, AsyncCredential, Broker, Task, scoped_tool
from agentwrit_tools.broker import BrokerSettings, EmbeddedBroker
from agentwrit_tools.trace import LaunchTokenIssued, LaunchTokensEnded, Minted

CEILING = "read:records:*"


@scoped_tool("read:records:{patient_id}")
def read_record(patient_id: str) -> str:
    return patient_id


def _extensions(broker: Any) -> bool:
    return bool(broker.settings.extensions)


def _register_with(url: str, launch_token: str, task_id: str) -> int:
    return registers_with(url, launch_token, task_id, "read:records:p-1")


def _launch_tokens(task: Task) -> list[str]:
    return [issued.token for issued in task.launcher._launch.issued]


def _failed_registrations(broker: Any) -> float:
    with httpx.Client(base_url=broker.url) as client:
        text = client.get("/v1/metrics").text
    lines = [line for line in text.splitlines() if line.startswith('agentwrit_registrations_total{status="failure"}')]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_a_call_costs_the_registration_and_the_release_on_its_path(broker: Any, client: Broker, task_id: str) -> None:
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING, tools=[read_record]) as task:
        time.sleep(0.2)  # the task's first call comes after the model's first answer: the prefetch is done by then
        results = [task.call(read_record, {"patient_id": f"p-{n}"}) for n in range(6)]
    assert all(r.ok for r in results)
    minted = [e for e in task.events if isinstance(e, Minted)]
    per_call = 1 if _extensions(broker) else 2  # the reference contract verifies the issued token by validate
    assert [e.round_trips for e in minted] == [per_call] * 6
    assert all(set(e.prefetched) == {"nonce", "launch_token"} for e in minted)
    issued = [e for e in task.events if isinstance(e, LaunchTokenIssued)]
    assert len(issued) == 1
    assert issued[0].prefetched
    assert issued[0].revocable is _extensions(broker)
    assert task.events.index(issued[0]) < task.events.index(minted[0])  # reported before the call it served


@pytest.fixture(params=["extensions", "reference"])
def short_nonces(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A broker of the test's own whose nonces live two seconds."""
    settings = BrokerSettings(nonce_ttl=2)
    extensions = request.param == "extensions"
    with EmbeddedBroker(db_path=tmp_path / "b.db", settings=settings, extensions=extensions) as running:
        yield running


def test_prefetched_nonces_are_used_once_and_never_after_they_expire(short_nonces: Any) -> None:
    broker = short_nonces
    app = broker.create_app("nonces", [CEILING])
    with Broker(broker.url, app.client_id, app.client_secret) as client:
        with Task(client, orch_id="o", task_id="nonces", ceiling=CEILING) as task:
            first = [task.call(read_record, {"patient_id": f"p-{n}"}) for n in range(20)]
            time.sleep(2.2)  # every nonce fetched so far is now expired at the broker
            second = [task.call(read_record, {"patient_id": f"q-{n}"}) for n in range(20)]
        pool = client._core.nonces
        assert pool is not None
        dropped, taken = pool.dropped, pool.taken
    assert all(r.ok for r in first + second)
    assert taken >= 30  # most calls took a nonce fetched ahead...
    assert dropped > 0  # ...and the ones left when they expired were dropped, not used
    # The broker's word: it refused no registration — no nonce was reused or used past its TTL.
    assert _failed_registrations(broker) == 0
    with Broker(broker.url, admin_secret=broker.admin_secret) as operator:
        refusals = operator.admin.audit_events(event_type="registration_policy_violation").events
    assert refusals == ()


def test_a_tasks_launch_tokens_die_with_it(broker: Any, client: Broker, task_id: str) -> None:
    with Task(client, orch_id="o", task_id=task_id, ceiling=CEILING) as task:
        assert task.call(read_record, {"patient_id": "p-1"}).ok
    tokens = _launch_tokens(task)
    assert len(tokens) == 1
    ended = [e for e in task.events if isinstance(e, LaunchTokensEnded)]
    assert len(ended) == 1
    if _extensions(broker):
        assert (ended[0].revoked, ended[0].unrevocable, ended[0].error) == (1, 0, None)
        assert _register_with(broker.url, tokens[0], task_id) == 401  # revoked: the broker says so
    else:
        # Nothing can revoke it: the trace says how many are left and when the last one dies, which is soon.
        assert (ended[0].revoked, ended[0].unrevocable) == (0, 1)
        assert ended[0].expires is not None
        assert ended[0].expires <= time.time() + 31
    # Either way a launch token fetched ahead never registers an agent for another task.
    if _extensions(broker):
        assert _register_with(broker.url, tokens[0], "another-task") in (401, 403)


@contextmanager
def _own(tmp_path: Path, *, extensions: bool) -> Iterator[tuple[Any, Broker, Broker]]:
    """A broker of the test's own in one mode (with the extensions, or as the reference one), an app's client
    and the operator's."""
    with EmbeddedBroker(db_path=tmp_path / "own.db", extensions=extensions) as running:
        app = running.create_app("own", [CEILING])
        with (
            Broker(running.url, app.client_id, app.client_secret) as client,
            Broker(running.url, admin_secret=running.admin_secret) as operator,
        ):
            yield running, client, operator


def test_a_task_that_made_no_call_ends_its_prefetched_launch_token(tmp_path: Path) -> None:
    with _own(tmp_path, extensions=True) as (broker, client, _):
        with Task(client, orch_id="o", task_id="idle", ceiling=CEILING) as task:
            deadline = time.monotonic() + 5
            while not task.launcher.holds_launch_tokens and time.monotonic() < deadline:
                time.sleep(0.01)  # fetched ahead, though no call ever comes
        tokens = _launch_tokens(task)
        assert len(tokens) == 1
        assert _register_with(broker.url, tokens[0], "idle") == 401
    assert [e.type for e in task.events] == ["launch_token_issued", "launch_tokens_ended"]


def test_on_the_reference_contract_a_launch_token_dies_on_its_own_soon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agentwrit_tools.client._launch.UNBOUND_LAUNCH_TTL", 2)
    with _own(tmp_path, extensions=False) as (broker, client, _):
        with Task(client, orch_id="o", task_id="short", ceiling=CEILING) as task:
            assert task.call(read_record, {"patient_id": "p-1"}).ok
            time.sleep(2.1)  # past the first launch token's usable time: the next call does not use it...
            assert task.call(read_record, {"patient_id": "p-2"}).ok
        tokens = _launch_tokens(task)
        assert len(tokens) == 2  # ...it got (or had fetched) a fresh one
        time.sleep(2.1)
        assert all(_register_with(broker.url, token, "short") == 401 for token in tokens)  # the broker: both dead


def test_an_operators_task_revocation_also_kills_the_tasks_launch_token(tmp_path: Path) -> None:
    with (
        _own(tmp_path, extensions=True) as (broker, client, operator),
        Task(client, orch_id="o", task_id="revoked", ceiling=CEILING) as task,
    ):
        assert task.call(read_record, {"patient_id": "p-1"}).ok
        operator.admin.revoke("task", "revoked")
        assert _register_with(broker.url, _launch_tokens(task)[0], "revoked") == 401


@pytest.mark.anyio
async def test_cancelling_mid_call_still_releases_and_the_task_still_ends_its_launch_token(
    broker: Any, app: Any, operator: Broker, task_id: str
) -> None:
    recorder = Recorder()
    entered = anyio.Event()

    @scoped_tool("read:records:{patient_id}")
    async def slow(patient_id: str, credential: AsyncCredential) -> str:
        recorder.saw("slow", credential)
        entered.set()
        await anyio.sleep_forever()
        return patient_id

    async with AsyncBroker(broker.url, app.client_id, app.client_secret) as aclient:
        task = Task(aclient, orch_id="o", task_id=task_id, ceiling=CEILING)
        async with anyio.create_task_group() as group:

            async def run() -> None:
                async with task:
                    await task.acall(slow, {"patient_id": "p-1"})

            group.start_soon(run)
            await entered.wait()
            group.cancel_scope.cancel()
    assert_dead(operator, recorder.seen)
    assert task.live_credentials == 0
    ended = [e for e in task.events if isinstance(e, LaunchTokensEnded)]
    assert len(ended) == 1
    if _extensions(broker):
        assert ended[0].revoked == 1
        assert _register_with(broker.url, _launch_tokens(task)[0], task_id) == 401
    assert all(is_dead(operator, seen.token) for seen in recorder.seen)
