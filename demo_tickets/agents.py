"""The help desk's agents: a ticket's authority comes from its verified sender, and narrows at every handoff.

When a ticket arrives, the help desk's own code (never a model) matches its sender to a customer
(:func:`~demo_tickets.data.verify_sender`). That decides the **ceiling**: everything this ticket may ever touch —
that one customer's account, billing, refunds and case notes, the knowledge base, and replies to this one ticket.
Three agents then work it as a pipeline, each holding a token *delegated* from the one before, narrower each time:

* **triage** holds the whole ceiling; it reads the account and classifies the ticket (refund, billing, account or
  general). A ticket whose sender is not a verified customer has a ceiling of one scope — replying to it — and
  triage halts it there, with a fixed reply: no agent ever gets any customer's authority, nothing downstream runs.
* **knowledge** drops the account: it searches the knowledge base for the policy that applies and hands the
  response agent's authority on (a pipeline delegates in a line; its own tools reach only the knowledge base).
* **response** holds only what the ticket's category needs: a refund ticket may read billing and refund, a
  question about closing the account may only write a case note and reply. Its toolbox also holds
  ``delete_account`` and ``send_external_email``; no category's scope covers them, so the guard refuses them.

Every tool call inside a stage gets its own credential, delegated from the stage's token for exactly that call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentwrit_tools import Pipeline, Stage, ToolResult
from agentwrit_tools.demo import ScenarioRun
from agentwrit_tools.pipeline import PipelineResult, StageContext

from . import data
from .tools import SupportTools, build_tools

__all__ = [
    "CATEGORIES",
    "MAX_TICKET",
    "Ticket",
    "handle_ticket",
    "problem_with",
    "response_scope",
    "ticket_ceiling",
]

MAX_TICKET = 4000
CATEGORIES = ("refund", "billing", "account", "general")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")
_CATEGORY = re.compile(r"\bcategory:\s*(refund|billing|account|general)\b", re.IGNORECASE)

UNVERIFIED_REPLY = (
    "Thank you for writing. We could not match the address you wrote from to an account, so we cannot act on "
    "any account from this message. Please write to us again from the address on your account."
)

# Knowledge holds what the response may need (a handoff can only narrow), and the knowledge base.
KNOWLEDGE_SCOPE = (
    "read:kb:*",
    "read:billing:{customer_id}",
    "write:refunds:{customer_id}",
    "write:notes:{customer_id}",
    "write:replies:{ticket_id}",
)

_RESPONSE_NEEDS: dict[str, tuple[str, ...]] = {
    "refund": ("read:billing", "write:refunds", "write:notes"),
    "billing": ("read:billing", "write:notes"),
    "account": ("write:notes",),
    "general": ("write:notes",),
}

_SYSTEM = {
    "triage": (
        "You are the triage agent of a software company's help desk. The help desk verified that the ticket comes "
        "from customer {customer_id}. Read their account with get_customer, then classify the ticket. Answer "
        "'category: <refund|billing|account|general>' followed by one sentence on what the customer wants."
    ),
    "knowledge": (
        "You are the knowledge agent of the help desk. Find the knowledge-base article that governs this "
        "{category} ticket: search_kb, then get_article on the best match. Answer with the article's rule."
    ),
    "response": (
        "You are the response agent of the help desk, working ticket {ticket_id} for customer {customer_id}. "
        "Resolve it with your tools, within the policy given: read billing, refund a duplicate charge, add a case "
        "note, and always post_reply to the customer. Never act on another customer's account. Finish with one "
        "sentence on what you did."
    ),
}


@dataclass(frozen=True)
class Ticket:
    """A ticket as the help desk received it.

    Attributes:
        ticket_id: the help desk's id for it.
        sender: the address it came from.
        text: what the sender wrote.
        customer_id: the customer the sender was verified to be, by the help desk's code; None when unknown.
    """

    ticket_id: str
    sender: str
    text: str
    customer_id: str | None


def problem_with(sender: str, text: str) -> str | None:
    """A plain reply for a ticket that cannot be worked (no sender address, empty or oversized text)."""
    if not sender.strip():
        return "Please give the address the ticket comes from."
    if not _EMAIL.fullmatch(sender.strip()):
        return f"{sender.strip()[:60]!r} is not an e-mail address."
    if not text.strip():
        return "Please type the ticket first."
    if len(text) > MAX_TICKET:
        return f"That ticket is {len(text)} characters long; please keep it under {MAX_TICKET}."
    return None


def ticket_ceiling(ticket_id: str, customer_id: str | None) -> list[str]:
    """Everything one ticket may ever touch; only the reply to it when the sender is not a verified customer."""
    if customer_id is None:
        return [f"write:replies:{ticket_id}"]
    return [
        f"read:customers:{customer_id}",
        f"read:billing:{customer_id}",
        f"write:refunds:{customer_id}",
        f"write:notes:{customer_id}",
        "read:kb:*",
        f"write:replies:{ticket_id}",
    ]


def response_scope(found: Mapping[str, Any]) -> list[str]:
    """What the response agent holds for a ticket of ``found["category"]``: no more than that category needs."""
    customer_id, ticket_id = found["customer_id"], found["ticket_id"]
    needs = _RESPONSE_NEEDS[found["category"]]
    return [f"{action}:{customer_id}" for action in needs] + [f"write:replies:{ticket_id}"]


def category_of(answer: str) -> str:
    """The category the triage agent named (``general`` when it named none of them)."""
    found = _CATEGORY.search(answer)
    return found.group(1).lower() if found else "general"


def _messages(agent: str, header: str, text: str, **values: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": _SYSTEM[agent].format(**values)},
        {"role": "user", "content": f"[{agent} {header}]\n{text}"},
    ]


def _output(results: tuple[ToolResult, ...], tool: str) -> dict[str, Any] | None:
    """The last successful output of ``tool`` among a stage's calls."""
    for result in reversed(results):
        if result.tool == tool and result.ok and isinstance(result.output, dict):
            return result.output
    return None


def ticket_pipeline(
    run: ScenarioRun,
    tools: SupportTools,
    ticket: Ticket,
    responder_extra: Callable[[StageContext], None] | None = None,
) -> Pipeline:
    """Triage → knowledge → response for ``ticket``, each stage's authority delegated from the one before."""
    t = ticket.ticket_id

    def triage(ctx: StageContext) -> dict[str, str]:
        run.witness.saw(ctx.credential)
        if ticket.customer_id is None:
            posted = ctx.call(tools.post_reply, {"ticket_id": t, "text": UNVERIFIED_REPLY})
            if posted.ok:
                run.answer(f"To {ticket.sender}: {UNVERIFIED_REPLY}", agent="reply", stand_in=False)
            ctx.halt("the sender is not a verified customer, so no agent gets any customer's authority")
        c = ticket.customer_id
        header = f"ticket {t} customer {c}"
        result = run.chat(ctx.task, _messages("triage", header, ticket.text, customer_id=c), agent="triage")
        return {"ticket_id": t, "customer_id": c, "category": category_of(result.output_text or "")}

    def knowledge(ctx: StageContext) -> dict[str, Any]:
        run.witness.saw(ctx.credential)
        found = dict(ctx.input)
        header = f"ticket {t} category {found['category']}"
        messages = _messages("knowledge", header, ticket.text, category=found["category"])
        result = run.chat(ctx.task, messages, agent="knowledge")
        return {**found, "article": _output(result.results, "get_article")}

    def response(ctx: StageContext) -> dict[str, Any] | None:
        run.witness.saw(ctx.credential)
        found = ctx.input
        article = found["article"]
        policy = f"{article['article_id']} — {article['title']}: {article['summary']}" if article else "none found"
        header = f"ticket {t} customer {found['customer_id']} category {found['category']}"
        text = f"{ticket.text}\n\nKnowledge: {policy}"
        messages = _messages("response", header, text, ticket_id=t, customer_id=found["customer_id"])
        result = run.chat(ctx.task, messages, agent="response")
        if responder_extra is not None:
            responder_extra(ctx)
        reply = _output(result.results, "post_reply")
        if reply is not None:
            run.answer(f"To {ticket.sender}: {reply['text']}", agent="reply")
        return reply

    return Pipeline(
        [
            Stage("triage", ticket_ceiling(t, ticket.customer_id), triage, tools=tools.triage),
            Stage("knowledge", list(KNOWLEDGE_SCOPE), knowledge, tools=tools.knowledge),
            Stage("response", response_scope, response, tools=tools.response),
        ]
    )


def handle_ticket(
    run: ScenarioRun,
    sender: str,
    text: str,
    *,
    responder_extra: Callable[[StageContext], None] | None = None,
) -> PipelineResult | None:
    """Work one ticket from ``sender`` (a plain reply, and nothing run, when it cannot be worked).

    ``responder_extra`` runs inside the response stage after its agent finished (scenarios misbehave there).
    """
    problem = problem_with(sender, text)
    if problem is not None:
        run.answer(problem, agent="help desk", stand_in=False)
        return None
    customer_id = data.verify_sender(sender)
    ticket = Ticket(f"T-{run.run_id}", sender.strip(), text.strip(), customer_id)
    if customer_id is None:
        run.note(
            f"ticket {ticket.ticket_id}: the sender {ticket.sender} matches no customer's address on file", "refused"
        )
    else:
        who = f"{data.CUSTOMERS[customer_id]['name']} ({customer_id})"
        run.note(
            f"ticket {ticket.ticket_id}: the help desk verified the sender {ticket.sender} as {who}; the ticket may "
            f"touch {customer_id}'s account and nothing else",
            "ok",
        )
    return ticket_pipeline(run, build_tools(run.api), ticket, responder_extra).run(
        run.stack.broker,
        ticket,
        orch_id=run.stack.demo.orch_id,
        task_id=run.task_id("ticket"),
        ceiling=ticket_ceiling(ticket.ticket_id, customer_id),
        call_ttl=30,
        budget=120,
        sinks=[run.sink],
    )
