"""``InterruptApprover``: a LangGraph run pauses for a person's yes before a dangerous call is minted.

::

    approver = InterruptApprover()
    policy = Policy().with_approval(approver, scopes=["write:prescriptions:*"])
    graph = builder.compile(checkpointer=InMemorySaver())         # interrupts need a checkpointer

    state = graph.invoke(inputs, config)                            # pauses: state["__interrupt__"][0].value
    payload = state["__interrupt__"][0].value                       # tool, arguments, scope, digest…
    graph.invoke(Command(resume=approval_for(payload, by="dr-house")), config)

The approver calls LangGraph's ``interrupt`` with the :class:`~agentwrit_tools.guard.ApprovalRequest` as a JSON
payload; the graph's state is saved and the run stops — nothing has been minted. When the graph is resumed, the
node runs again from its start, the guard builds the request again, and ``interrupt`` now returns the resume
value: an approval bound to the digest of the call the person saw. If the call is no longer that call (the tool
call's arguments were edited in the meantime), its digest differs and the call is denied; an approval already
used is refused too. A bare ``True`` is not an answer here (it would approve whatever the re-run asks): resume
with :func:`approval_for`, or with ``False`` to refuse.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ...errors import ConfigurationError
from ...guard import Approval, ApprovalRequest
from ...scopes import is_identifier

__all__ = ["InterruptApprover", "approval_for"]


class InterruptApprover:
    """An approver for calls made inside a LangGraph node (``ToolNode``, or any node calling ``task.call``).

    Attributes:
        suspends: the exceptions that pause a graph (LangGraph's ``GraphBubbleUp``); the guard lets them through
            with nothing minted.
        name: recorded as the approver when the answer names none.
    """

    def __init__(self, name: str = "langgraph") -> None:
        try:
            from langgraph.errors import GraphBubbleUp
        except ImportError:  # pragma: no cover - langgraph ships with the dev and notebook extras
            raise ConfigurationError("InterruptApprover needs langgraph (pip install langgraph)") from None
        if not is_identifier(name):
            raise ConfigurationError("an approver is named by a plain identifier (letters, digits, _ . @ + -)")
        self.suspends: tuple[type[BaseException], ...] = (GraphBubbleUp,)
        self.name = name

    def __call__(self, request: ApprovalRequest) -> Approval | None:
        from langgraph.types import interrupt

        value = interrupt(request.to_dict())
        if value is False or value is None:
            return request.deny(self.name)
        return Approval.from_dict(value)

    def __repr__(self) -> str:
        return f"InterruptApprover(name={self.name!r})"


def approval_for(payload: Mapping[str, Any], *, by: str, approved: bool = True) -> dict[str, Any]:
    """The resume value answering an interrupt ``payload``: bound to its digest and id, decided now, by ``by``.

    Raises:
        ConfigurationError: ``payload`` is not an approval request's payload, or ``by`` not a plain identifier.
    """
    digest, ident = payload.get("digest"), payload.get("id")
    if payload.get("kind") != "agentwrit_approval" or not isinstance(digest, str) or not isinstance(ident, str):
        raise ConfigurationError("not the payload of an approval request (its kind, digest and id are missing)")
    return Approval(approved, digest, ident, by, time.time()).to_dict()
