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

A spent launch token is marked consumed, the state registration already refuses. Revocations are audited as
``token_revoked`` events that name the task, never a launch token. With the extensions off the ``task_id`` field
is ignored (as the reference broker ignores unknown fields) and the endpoint does not exist.

The binding lives in a table of its own (``launch_token_tasks``), created here like ``token_audiences``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from ._bodies import req_identifier
from ._problems import Problem, bad_request
from ._secrets import sha256_hex

if TYPE_CHECKING:
    from ._core import BrokerCore

__all__ = ["LaunchTokenTasks", "bound_task", "revoke_launch_tokens"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS launch_token_tasks ("
    " token_hash TEXT PRIMARY KEY, task_id TEXT NOT NULL, app_id TEXT);"
    "CREATE INDEX IF NOT EXISTS launch_token_tasks_task ON launch_token_tasks (task_id);"
)
_LAUNCH_TOKEN = re.compile(r"[0-9a-f]{64}")
MAX_PRESENTED = 64


def bound_task(body: dict[str, Any], *, extensions: bool) -> str | None:
    """The task a launch-token request binds its token to; None when absent or the extensions are off."""
    if not extensions or body.get("task_id") is None:
        return None
    return req_identifier(body, "task_id")


class LaunchTokenTasks:
    """Which launch tokens are bound to which task (the ``launch_token_tasks`` table); event-loop thread only."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(_SCHEMA)

    def bind(self, token_hash: str, task_id: str, app_id: str | None) -> None:
        """Record the binding (call inside the transaction that creates the launch token)."""
        self._conn.execute(
            "INSERT INTO launch_token_tasks (token_hash, task_id, app_id) VALUES (?, ?, ?)",
            (token_hash, task_id, app_id),
        )

    def refusal(self, token_hash: str, task_id: str) -> Problem | None:
        """403 when the launch token is bound to another task than the registration names, else None."""
        row = self._conn.execute(
            "SELECT task_id FROM launch_token_tasks WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        if row is None or row[0] == task_id:
            return None
        return Problem(403, "scope_violation", "the launch token is bound to another task")

    def spend_task(self, task_id: str, app_id: str | None = None) -> int:
        """Spend the unused launch tokens bound to ``task_id`` (only ``app_id``'s when given); how many."""
        query = "SELECT token_hash FROM launch_token_tasks WHERE task_id = ?"
        args: tuple[str, ...] = (task_id,)
        if app_id is not None:
            query, args = query + " AND app_id = ?", (task_id, app_id)
        return self._spend([row[0] for row in self._conn.execute(query, args)])

    def spend_tokens(self, token_hashes: list[str], app_id: str | None = None) -> int:
        """Spend exactly these launch tokens (only ``app_id``'s when given), bound or not; how many were live."""
        if app_id is None:
            return self._spend(token_hashes)
        marks = ", ".join("?" * len(token_hashes))
        owned = self._conn.execute(
            f"SELECT token_hash FROM launch_tokens WHERE app_id = ? AND token_hash IN ({marks})",  # noqa: S608
            (app_id, *token_hashes),
        )
        return self._spend([row[0] for row in owned])

    def _spend(self, token_hashes: list[str]) -> int:
        if not token_hashes:
            return 0
        marks = ", ".join("?" * len(token_hashes))
        cursor = self._conn.execute(
            f"UPDATE launch_tokens SET consumed = 1 WHERE consumed = 0 AND expires_at > ? AND token_hash IN ({marks})",  # noqa: S608
            (time.time(), *token_hashes),
        )
        return cursor.rowcount


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


def revoke_launch_tokens(core: BrokerCore, claims: dict[str, Any], app_id: str | None, body: dict[str, Any]) -> Any:
    """``POST /v1/launch-tokens/revoke``: spend a task's launch tokens, or the ones presented.

    Args:
        claims: the caller's verified claims (an app's or the operator's).
        app_id: the calling app (its own launch tokens only), or None for the operator.
    """
    presented = _presented(body)
    task_id = None if presented is not None else req_identifier(body, "task_id")
    if presented is not None and body.get("task_id") is not None:
        raise bad_request("give either 'task_id' or 'launch_tokens', not both")
    with core.tx():
        if presented is not None:
            count = core.launch_tasks.spend_tokens(presented, app_id)
            what = f"{len(presented)} presented launch token(s)"
        else:
            assert task_id is not None  # noqa: S101 - req_identifier returned it
            count = core.launch_tasks.spend_task(task_id, app_id)
            what = f"the launch tokens of task {task_id}"
        core.audit.append(
            "token_revoked",
            agent_id=str(claims.get("sub", "")),
            task_id=task_id or "",
            detail=f"{what} revoked by {claims.get('sub', '')}: {count} unused",
        )
    return {"revoked": True, "count": count}
