"""Handoffs between Agents SDK agents that carry a delegated token — a pipeline chosen by the model.

An agent the model hands off to should hold *less* than the one that handed off, never more, and what it holds
should be provably derived from it. :class:`DelegatedHandoffs` builds that on a
:class:`~agentwrit_tools.pipeline.Relay` (the pipeline's own handoff code, so the semantics are the pipeline's):

* each guarded agent declares the scope it holds and its tools;
* the first agent to act gets its token under the task ceiling; a handoff (the SDK's ``handoff``, through its
  ``on_handoff``) delegates the target's declared scope from the current holder's token — a handoff to a wider
  agent is refused (:class:`~agentwrit_tools.pipeline.DelegationRefused`, raised out of the run) and nothing
  is minted for it;
* every tool call of an agent runs through the guard with a credential delegated from that agent's token, so its
  verified ``delegation_chain`` names the agents the authority came through.

Importing this module imports the pipeline layer: an SDK handoff *is* a pipeline handoff chosen at run time, and
writing the delegation rules a second time here would let the two drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from agents import Agent, Handoff, handoff

from ...errors import ConfigurationError
from ...guard import Policy, ScopedTool, Task
from ...pipeline import Relay
from ._tools import guarded_function_tool

__all__ = ["DelegatedHandoffs"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class _Member:
    name: str
    scope: tuple[str, ...]
    tools: tuple[ScopedTool, ...]
    ttl: int | None
    policy: Policy | None


class DelegatedHandoffs:
    """Agents SDK agents handing each other authority that can only narrow.

    ::

        async with Relay(abroker, orch_id=..., task_id=..., ceiling=[...]) as relay:
            team = DelegatedHandoffs(relay)
            billing = team.agent(Agent(name="billing", ...), scope="read:invoices:C-7", tools=[get_invoice])
            triage = team.agent(Agent(name="triage", ...), scope=["read:tickets:T-1", "read:invoices:C-7"],
                                tools=[read_ticket], handoffs=[billing])
            result = await Runner.run(triage, question)

    Args:
        relay: the chain of authority (its ceiling, budget and trace).
    """

    def __init__(self, relay: Relay) -> None:
        if not isinstance(relay, Relay):
            raise ConfigurationError(f"expected a pipeline Relay, not {type(relay).__name__}")
        self.relay = relay
        self._members: dict[int, _Member] = {}

    def _member(self, agent: Agent[Any]) -> _Member:
        member = self._members.get(id(agent))
        if member is None:
            raise ConfigurationError(f"agent {agent.name!r} was not made by this team's agent(): it holds no scope")
        return member

    async def _take(self, member: _Member) -> Task:
        return await self.relay.hand_to(
            member.name, member.scope, tools=member.tools, ttl=member.ttl, policy=member.policy
        )

    def agent(
        self,
        agent: Agent[Any],
        *,
        scope: str | Sequence[str],
        tools: Sequence[ScopedTool] = (),
        handoffs: Sequence[Agent[Any]] = (),
        ttl: int | None = None,
        policy: Policy | None = None,
    ) -> Agent[Any]:
        """A copy of ``agent`` that holds ``scope``: ``tools`` run under its own delegated token, and each of
        ``handoffs`` (agents made by this method) receives authority delegated from it.

        Raises:
            ConfigurationError: a bad scope, a tool that is not a ScopedTool, or a handoff target not made here.
        """
        if not isinstance(agent, Agent):
            raise ConfigurationError(f"expected an Agents SDK Agent, not {type(agent).__name__}")
        name = _UNSAFE.sub("_", agent.name)[:64] or "agent"
        scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        member = _Member(name, scopes, tuple(tools), ttl, policy)

        async def current() -> Task:
            return await self._take(member)

        guarded = [guarded_function_tool(tool, current) for tool in member.tools]
        passes = [self._handoff(member, target) for target in handoffs]
        clone = agent.clone(tools=[*agent.tools, *guarded], handoffs=[*agent.handoffs, *passes])
        self._members[id(clone)] = member
        return clone

    def _handoff(self, source: _Member, target_agent: Agent[Any]) -> Handoff[Any, Agent[Any]]:
        target = self._member(target_agent)

        async def pass_on(ctx: Any) -> None:
            await self._take(source)  # the source acts first if it has not yet (it is the entry agent)
            await self._take(target)

        return handoff(target_agent, on_handoff=pass_on)

    async def __aenter__(self) -> DelegatedHandoffs:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.relay.aclose()
