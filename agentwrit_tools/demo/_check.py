"""The final check: ask the broker about every token a scenario saw, after the scenario is over.

It uses ``POST /v1/token/validate`` — the broker's own answer, not the client's memory of what it released —
so "0 live credentials" means the broker would refuse every one of them now. Only a definite "invalid" counts
as dead: a broker that cannot be reached fails the check instead of passing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..client import Broker
from ..errors import TokenInvalid, TokenRevoked
from ._witness import SeenToken, TokenWitness

__all__ = ["CheckResult", "check_tokens"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How many of the tokens checked the broker still accepts."""

    checked: int
    alive: tuple[str, ...]
    """The ``jti`` of every token still valid."""

    @property
    def live_credentials(self) -> int:
        return len(self.alive)


def check_tokens(
    broker: Broker, witness: TokenWitness, *, on_token: Callable[[SeenToken, bool], None] | None = None
) -> CheckResult:
    """Validate every token ``witness`` saw; ``on_token(seen, alive)`` is told each answer.

    Raises:
        AgentWritError: the broker could not answer (the check cannot pass without it).
    """
    alive: list[str] = []
    seen = witness.tokens()
    for token in seen:
        try:
            broker.validate(token.token)
            valid = True
        except (TokenInvalid, TokenRevoked):
            valid = False
        if valid:
            alive.append(token.jti)
        if on_token is not None:
            on_token(token, valid)
    return CheckResult(len(seen), tuple(alive))
