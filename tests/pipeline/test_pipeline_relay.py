"""``Relay`` on its own: a chain of holders chosen at run time, with the pipeline's rules — the first under the
ceiling, each next delegated from the current one (narrowing only), everything released at the end."""

from __future__ import annotations

from typing import Any

import pytest
from support import Recorder, assert_dead

from agentwrit_tools import AsyncBroker, Broker, ConfigurationError, current_credential, scoped_tool
from agentwrit_tools.pipeline import DelegationRefused, Relay

pytestmark = pytest.mark.anyio


def _tool(recorder: Recorder) -> Any:
    @scoped_tool("read:kb:{article}")
    def read_article(article: str) -> str:
        recorder.saw("read_article", current_credential())
        return article

    return read_article


async def test_holders_narrow_and_everything_is_released(aclient: AsyncBroker, operator: Broker, task_id: str) -> None:
    recorder = Recorder()
    tool = _tool(recorder)
    async with Relay(aclient, orch_id="support", task_id=task_id, ceiling=["read:kb:*", "read:tickets:*"]) as relay:
        assert relay.holder is None
        first = await relay.hand_to("triage", ["read:kb:*", "read:tickets:*"], tools=[tool])
        assert await relay.hand_to("triage", ["read:kb:*"]) is first  # the holder already: same task
        assert (await first.acall("read_article", {"article": "a-1"})).ok
        second = await relay.hand_to("knowledge", "read:kb:a-2", tools=[tool])
        assert relay.holder == "knowledge"
        assert len(relay.lineage) == 2
        assert (await second.acall("read_article", {"article": "a-2"})).ok
        assert (await second.acall("read_article", {"article": "a-1"})).error_kind == "outside_ceiling"
        with pytest.raises(DelegationRefused) as refused:
            await relay.hand_to("triage-again", ["read:kb:*"])
        assert refused.value.missing == ("read:kb:*",)
        assert relay.holder == "knowledge"
    assert [len(seen.chain) for seen in recorder.seen] == [1, 2]
    assert_dead(operator, recorder.seen)
    with pytest.raises(ConfigurationError, match="closed"):
        await relay.hand_to("late", "read:kb:a-3")


async def test_a_relay_needs_an_async_broker(client: Broker) -> None:
    with pytest.raises(ConfigurationError, match="AsyncBroker"):
        Relay(client, orch_id="o", task_id="t", ceiling="read:kb:*")  # type: ignore[arg-type]
