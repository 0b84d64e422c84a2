"""Defence in depth, shown: code that skips the guard asks the broker and the protected API itself, and both refuse.

A scenario first shows the guard denying a call. These probes then show that going around the guard gains
nothing: minting by hand under the task's launch token is refused by the broker (the launch token's
``allowed_scope`` is the task ceiling), and a credential the task may hold, presented where it does not reach, is
refused by the protected API (it checks the verified claims, not what the caller says it needs), and a stage of a
pipeline handing on more than it holds is refused by the broker (delegation only narrows), and a key-bound token
copied out of a log is worthless to whoever copied it (the API wants a fresh proof by the holder's key). Each
probe narrates what happened, records a broken promise when the other side did *not* refuse, and releases
whatever it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..client import Credential
from ..errors import ScopeViolation
from ..guard import Task
from ..pop import make_proof
from ._scenario import ScenarioRun
from ._witness import BackendRefused

if TYPE_CHECKING:
    from ..pipeline import StageContext

__all__ = ["api_refuses", "broker_refuses", "copy_refused", "widening_refused"]

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


def copy_refused(
    run: ScenarioRun, credential: Credential, path: str, elsewhere: str, *, api: str = "the protected API"
) -> bool:
    """A key-bound ``credential``'s request to ``path`` is logged (token and proof); whoever copies them from the
    log tries the token as a bearer token, with a proof of their own key, with the logged proof again, and with it
    at ``elsewhere``. True when ``api`` refused all four and still serves the holder (a fresh proof); the tokens
    themselves never reach the trace."""
    url = run.api.url(path)
    logged = credential.headers_for("GET", url)  # what a debug log of the holder's request would hold
    run.witness.saw(credential)
    ids: dict[str, Any] = {"jti": credential.claims.jti, "scope": credential.scope}
    if not credential.key_bound:
        return run.expect(False, "", "the broker did not bind the token to its agent's key: a copy would work", **ids)
    served = run.api.send_as_is("GET", path, logged)
    run.note(f"the holder's GET {path} is served ({served.status}); a debug log kept its headers", **ids)
    token = logged["Authorization"].partition(" ")[2]
    thief = make_proof(Ed25519PrivateKey.generate(), "GET", url, token)
    attempts = {
        "as a plain bearer token": ("GET", path, {"Authorization": f"Bearer {token}"}),
        "with a proof signed by the thief's own key": ("GET", path, {"Authorization": f"DPoP {token}", "DPoP": thief}),
        "with the proof from the log, replayed": ("GET", path, logged),
        f"with the proof from the log, at {elsewhere}": ("GET", elsewhere, logged),
    }
    refused = 0
    for how, (method, where, headers) in attempts.items():
        answer = run.api.send_as_is(method, where, headers)
        if answer.status == 401:
            refused += 1
            run.note(f"the copied token {how}: {api} answered 401 ({answer.detail})", "refused", **ids)
        else:
            run.note(f"the copied token {how}: {api} answered {answer.status}", "warning", **ids)
    again = run.api.send_as_is("GET", path, credential.headers_for("GET", url))
    return run.expect(
        served.status == 200 and refused == len(attempts) and again.status == 200,
        f"all {len(attempts)} uses of the copy were refused; the holder, proving its key afresh, is still served",
        "a copied token was accepted, or the holder was refused",
        **ids,
    )
