"""Shared by the pipeline tests: a support-desk pipeline's tools and the audit reads that follow a run's tokens.

The pipeline is the one from issue 5: triage (reads the ticket) → knowledge (searches the knowledge base) →
response (posts the reply to that one ticket), each stage holding less than the one before.
"""

from __future__ import annotations

from typing import Any

from support import Recorder, assert_dead, audit

from agentwrit_tools import Broker, scoped_tool
from agentwrit_tools.guard import ScopedTool

APP_SCOPES = ["read:tickets:*", "read:kb:*", "write:replies:*", "read:customers:*"]
CEILING = ["read:tickets:*", "read:kb:*", "write:replies:*"]
TRIAGE = ["read:tickets:*", "read:kb:*", "write:replies:*"]
KNOWLEDGE = ["read:kb:*", "write:replies:*"]


def support_tools(recorder: Recorder) -> dict[str, ScopedTool]:
    """The desk's three tools; each records the credential it ran with."""

    @scoped_tool("read:tickets:{ticket_id}")
    def read_ticket(ticket_id: str, credential: Any) -> dict[str, Any]:
        """Read a support ticket.

        Args:
            ticket_id: the ticket's id.
        """
        recorder.saw("read_ticket", credential)
        return {"ticket": ticket_id, "topic": "refund"}

    @scoped_tool("read:kb:{article}")
    def search_kb(article: str, credential: Any) -> dict[str, Any]:
        """Read a knowledge-base article.

        Args:
            article: the article's id.
        """
        recorder.saw("search_kb", credential)
        return {"article": article, "text": "Refunds take 5 days."}

    @scoped_tool("write:replies:{ticket_id}")
    def post_reply(ticket_id: str, text: str, credential: Any) -> str:
        """Post a reply to a ticket.

        Args:
            ticket_id: the ticket's id.
            text: the reply.
        """
        recorder.saw("post_reply", credential)
        return f"posted to {ticket_id}"

    return {"read_ticket": read_ticket, "search_kb": search_kb, "post_reply": post_reply}


def assert_all_dead(operator: Broker, task_id: str, recorder: Recorder) -> None:
    """Every token a body saw is dead, and the broker recorded every token it issued for the task as ended."""
    assert recorder.seen
    assert_dead(operator, recorder.seen)
    assert issued(operator, task_id) <= ended(operator, task_id)


def issued(operator: Broker, task_id: str) -> set[str]:
    """The jti of every token the broker issued for the task: registrations and delegations."""
    return {e.resource for e in audit(operator, task_id, "token_issued", "delegation_created")}


def ended(operator: Broker, task_id: str) -> set[str]:
    """The jti of every token the broker recorded as released or revoked (cascade included)."""
    return {e.resource for e in audit(operator, task_id, "token_released", "token_revoked")}


def scopes_issued(operator: Broker, task_id: str) -> list[str]:
    """The audit details of every issued token (``scope a,b, ttl …`` / ``… delegated a,b``)."""
    return [e.detail for e in audit(operator, task_id, "token_issued", "delegation_created")]
