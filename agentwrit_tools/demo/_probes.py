"""Defence in depth, shown: code that skips the guard asks the broker and the protected API itself, and both refuse.

A scenario first shows the guard denying a call. These probes then show that going around the guard gains
nothing: minting by hand under the task's launch token is refused by the broker (the launch token's
``allowed_scope`` is the task ceiling), and a credential the task may hold, presented where it does not reach, is
refused by the protected API (it checks the verified claims, not what the caller says it needs), and a stage of a
pipeline handing on more than it holds is refused by the broker (delegation only narrows). Each probe
narrates what happened, records a broken promise when the other side did *not* refuse, and releases whatever it
was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..client import Credential
from ..errors import ScopeViolation
from ..guard import Task
from ._scenario import ScenarioRun
from ._witness import BackendRefused

if TYPE_CHECKING:
    from ..pipeline import StageContext

__all__ = ["api_refuses", "broker_refuses", "widening_refused"]

_TTL = 10


def broker_refuses(run: ScenarioRun, task: Task, scope: str) -> bool:
    """Mint ``scope`` by hand under ``task``'s launch token; True when the broker refuses it, as it must."""
    try:
        stray = run.launcher(task).mint(scope, ttl=_TTL)
    except ScopeViolation as refused:
        run.note(
            f"code that skipped the guard fares no better: the broker itself refused {scope} under this task's "
            f"launch token ({refused.status_code} {refused.error_code})",
            "refused",
            scope=(scope,),
        )
        return True
    run.witness.saw(stray)
    stray.release()
    run.expect(False, "", f"the broker minted {scope} outside the task's ceiling")
    return False


def api_refuses(run: ScenarioRun, task: Task, scope: str, path: str, *, api: str = "the protected API") -> bool:
    """Mint ``scope`` (within ``task``'s ceiling) and present it at ``path``, which it does not cover; True when
    the API refuses it, as it must."""
    credential = run.launcher(task).mint(scope, ttl=_TTL)
    try:
        run.witness.saw(credential)
        run.api.get(path, credential)
    except BackendRefused as refused:
        run.note(
            f"and {api} agrees: a {scope} credential presented at {path} got {refused.status} {refused.error_code}",
            "refused",
            jti=credential.claims.jti,
            scope=credential.scope,
        )
        return True
    finally:
        credential.release()
    run.expect(False, "", f"{api} accepted a {scope} credential at {path}")
    return False


def widening_refused(run: ScenarioRun, ctx: StageContext, scope: str, *, who: str) -> bool:
    """Have a pipeline stage's own token delegate ``scope``, more than it holds, to the first agent of its lineage;
    True when the broker refuses it, as it must. ``who`` names the stage for the narration."""
    held = ctx.credential
    if not isinstance(held, Credential):
        raise TypeError("widening_refused needs a stage of a sync pipeline (Pipeline.run)")
    try:
        extra = held.delegate(ctx.lineage[0], scope, ttl=_TTL)
    except ScopeViolation as refused:
        run.note(
            f"{who} tried to pass on {scope}; the broker refused ({refused.status_code} {refused.error_code}): "
            "delegation only narrows",
            "refused",
            scope=(scope,),
            agent_id=ctx.claims.sub,
        )
        return True
    run.witness.saw(extra)
    extra.release()
    run.expect(False, "", f"the broker let {who} pass on {scope}")
    return False
