"""A credential nobody releases, shown dying on its own at its ``exp``: the broker's last line of defence.

Every guarded call releases its credential when it returns; an agent that crashes mid-call does not. A scenario
showing what happens then mints one by hand (:func:`mint_unreleased`), uses it, never releases it, and watches
(:func:`watch_expiry`) the broker accept it until its ``exp`` and refuse it from then on — narrating the
countdown, so a person watching the live trace sees it die rather than reads that it did.
"""

from __future__ import annotations

import math
import time

from ..client import Credential
from ..errors import TokenInvalid
from ..trace import Expired, Minted
from ._scenario import ScenarioRun

__all__ = ["mint_unreleased", "watch_expiry"]

_POLL = 0.2


def mint_unreleased(run: ScenarioRun, scope: str, *, ttl: int, tool: str) -> Credential:
    """Mint ``scope`` for ``ttl`` seconds outside the guard, as ``tool``'s credential; traced and witnessed.

    Nothing releases it: that is the point. The final check still asks the broker about it.
    """
    started = time.monotonic()
    credential = run.stack.broker.mint(scope, orch_id=run.stack.demo.orch_id, task_id=run.task_id(), ttl=ttl)
    claims = credential.claims
    run.witness.saw(credential)
    run.emit(
        Minted,
        tool=tool,
        scope=tuple(claims.scope),
        jti=claims.jti,
        agent_id=claims.sub,
        ttl=ttl,
        exp=claims.exp,
        mint_time=time.monotonic() - started,
    )
    return credential


def watch_expiry(run: ScenarioRun, credential: Credential, *, tool: str, grace: float = 1.5) -> bool:
    """Ask the broker about ``credential`` until it refuses it; True when that happened by ``exp + grace``.

    Each whole second still left is narrated once; the death is traced as ``expired`` and checked as the run's
    promise (``run.expect``). Gives up (False, a broken promise) once ``grace`` seconds past ``exp`` have gone
    by with the broker still accepting the token.
    """
    claims = credential.claims
    died = _died_by(run, credential, tool, claims.exp + grace)
    return run.expect(
        died,
        "nobody released it, and it died on its own at its exp: the broker now refuses it",
        "the unreleased token outlived its exp",
        jti=claims.jti,
    )


def _died_by(run: ScenarioRun, credential: Credential, tool: str, deadline: float) -> bool:
    claims = credential.claims
    ids = {"tool": tool, "scope": tuple(claims.scope), "jti": claims.jti}
    told: int | None = None
    while True:
        try:
            run.stack.broker.validate(credential.access_token)
        except TokenInvalid:  # expired (a revoked token is one too, but nobody revokes this one)
            died_at = time.time()
            run.emit(Expired, exp=claims.exp, agent_id=claims.sub, **ids)
            return died_at <= deadline
        now = time.time()
        if now > deadline:
            return False
        left = max(math.ceil(claims.exp - now), 0)
        if left != told:
            told = left
            run.note(f"nobody released it, and the broker still accepts it: {left} s to its exp", jti=claims.jti)
        time.sleep(_POLL)
