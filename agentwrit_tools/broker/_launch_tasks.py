"""Extension: launch tokens bound to a task, and revocable — by the task, or one by one.

A task's launch token is created before the task's first tool call asks for it (the client fetches it ahead, so
the first call does not wait for it) and it is multi-use, so it must not outlive the task as something usable. In
the wire contract a launch token belongs to no task and cannot be revoked: it lives until its ``ttl``. With the
extensions on:

* ``POST /v1/{app,admin}/launch-tokens`` takes an optional ``task_id``: the launch token is *bound* to that task.
  Registration under it for any other ``task_id`` is refused (403 ``scope_violation``, before anything is
  consumed), and the answer's ``policy`` says ``task_id``, which is how a client knows the binding took.
* ``POST /v1/revoke`` with ``level: task`` also spends every launch token bound to that task.
* ``POST /v1/launch-tokens/revoke`` (an app's bearer: its own launch tokens; the operator's: anyone's) spends
  ``{"task_id": ...}``'s bound launch tokens, or exactly the ``{"launch_tokens": [...]}`` presented (which proves
  holding them); it answers ``{"revoked": true, "count": n}``.

A spent launch token is marked consumed, the state registration already refuses, on every replica (the binding is
a column of the launch token's row: migration 4). Revocations are audited as ``token_revoked`` events that name
the task, never a launch token. With the extensions off the ``task_id`` field is ignored (as the reference broker
ignores unknown fields) and the endpoint does not exist.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from . import _audit
from ._bodies import req_identifier
from ._problems import Problem, bad_request
from ._secrets import sha256_hex

if TYPE_CHECKING:
    from ._core import BrokerCore
    from ._store import LaunchTokenRow

__all__ = ["MAX_PRESENTED", "bound_elsewhere", "bound_task", "revoke_launch_tokens"]

_LAUNCH_TOKEN = re.compile(r"[0-9a-f]{64}")
MAX_PRESENTED = 64


def bound_task(body: dict[str, Any], *, extensions: bool) -> str | None:
    """The task a launch-token request binds its token to; None when absent or the extensions are off."""
    if not extensions or body.get("task_id") is None:
        return None
    return req_identifier(body, "task_id")


def bound_elsewhere(row: LaunchTokenRow, task_id: str) -> Problem | None:
    """403 when the launch token is bound to another task than the registration names, else None."""
    if row.task_id is None or row.task_id == task_id:
        return None
    return Problem(403, "scope_violation", "the launch token is bound to another task")


def _presented(body: dict[str, Any]) -> list[str] | None:
    """The ``launch_tokens`` list of a revoke request, as hashes; None when absent."""
    value = body.get("launch_tokens")
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_PRESENTED:
        raise bad_request(f"field 'launch_tokens' must be a list of 1 to {MAX_PRESENTED} launch tokens")
    if not all(isinstance(item, str) and _LAUNCH_TOKEN.fullmatch(item) for item in value):
        raise bad_request("field 'launch_tokens' holds something that is not a launch token")
    return sorted({sha256_hex(item) for item in value})


async def revoke_launch_tokens(
    core: BrokerCore, claims: dict[str, Any], app_id: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    """``POST /v1/launch-tokens/revoke``: spend a task's launch tokens, or the ones presented.

    Args:
        claims: the caller's verified claims (an app's or the operator's).
        app_id: the calling app (its own launch tokens only), or None for the operator.
    """
    presented = _presented(body)
    if presented is not None and body.get("task_id") is not None:
        raise bad_request("give either 'task_id' or 'launch_tokens', not both")
    task_id = None if presented is not None else req_identifier(body, "task_id")
    caller = str(claims.get("sub", ""))
    async with core.tx() as tx:
        if presented is not None:
            count = await tx.spend_launch_tokens(time.time(), token_hashes=presented, app_id=app_id)
            what = f"{len(presented)} presented launch token(s)"
        else:
            count = await tx.spend_launch_tokens(time.time(), task_id=task_id, app_id=app_id)
            what = f"the launch tokens of task {task_id}"
        await _audit.append(
            tx,
            "token_revoked",
            agent_id=caller,
            task_id=task_id or "",
            detail=f"{what} revoked by {caller}: {count} unused",
        )
    return {"revoked": True, "count": count}
