"""The help desk's tools: what the agents may ask for, and the exact scope each call needs.

Each tool is a plain function declared with :func:`scoped_tool`: the template names the scope, the model's
arguments fill in the identifier, and the guard mints a credential for exactly that before the body runs. Bodies
call the protected support API with the credential they were given and return its JSON, so the model (and the
stand-in's follow-up rules) can read fields off it. Customer and ticket ids are any string to the schema; the
scope template refuses every value that is not a plain identifier before anything is minted.

Two tools are dangerous on purpose — :func:`delete_account` and :func:`send_external_email`. They sit in the
response agent's toolbox, as they might in any agent framework's default kit, and their scopes sit outside
everything the help desk ever grants: the guard refuses them before a credential exists, so their bodies never run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from agentwrit_tools import Credential, ScopedTool, scoped_tool
from agentwrit_tools.demo import BackendClient

__all__ = ["CustomerId", "SupportTools", "build_tools"]

# Deliberately no pattern on ids: the scope template is the gate that refuses "*", "a:b" and the like.
CustomerId = Annotated[str, Field(description="the customer's id, e.g. C-1001")]
TicketId = Annotated[str, Field(description="the ticket's id, e.g. T-1a2b3c4d")]
ArticleId = Annotated[str, Field(description="a knowledge-base article id, e.g. KB-12")]
InvoiceId = Annotated[str, Field(pattern=r"^INV-\d{4}$", description="an invoice id, e.g. INV-3308")]
Cents = Annotated[int, Field(ge=1, le=50_000, description="the amount in cents")]
Text = Annotated[str, Field(min_length=1, max_length=1000)]


@dataclass(frozen=True)
class SupportTools:
    """Every help-desk tool, bound to one run's API client."""

    get_customer: ScopedTool
    get_billing: ScopedTool
    issue_refund: ScopedTool
    add_case_note: ScopedTool
    search_kb: ScopedTool
    get_article: ScopedTool
    post_reply: ScopedTool
    delete_account: ScopedTool
    send_external_email: ScopedTool

    @property
    def triage(self) -> list[ScopedTool]:
        """The triage agent reads the verified customer's account, nothing else."""
        return [self.get_customer]

    @property
    def knowledge(self) -> list[ScopedTool]:
        """The knowledge agent reads the knowledge base."""
        return [self.search_kb, self.get_article]

    @property
    def response(self) -> list[ScopedTool]:
        """The response agent's toolbox: billing, refunds, notes, replies — and two tools its scope never covers."""
        return [
            self.get_billing,
            self.issue_refund,
            self.add_case_note,
            self.post_reply,
            self.delete_account,
            self.send_external_email,
        ]


def build_tools(api: BackendClient) -> SupportTools:
    """The tools, each calling the support API through ``api`` with its own credential."""

    @scoped_tool("read:customers:{customer_id}", ttl=30, timeout=10)
    def get_customer(customer_id: CustomerId, credential: Credential) -> dict[str, Any]:
        """Read a customer's account: name, plan, status and how long they have been a customer."""
        result: dict[str, Any] = api.get(f"/customers/{customer_id}", credential)
        return result

    @scoped_tool("read:billing:{customer_id}", ttl=30, timeout=10)
    def get_billing(customer_id: CustomerId, credential: Credential) -> dict[str, Any]:
        """Read a customer's invoices, open balance and any duplicate charge the billing system flagged."""
        result: dict[str, Any] = api.get(f"/customers/{customer_id}/billing", credential)
        return result

    @scoped_tool("write:refunds:{customer_id}", ttl=15, timeout=10)
    def issue_refund(
        customer_id: CustomerId, invoice_id: InvoiceId, amount_cents: Cents, credential: Credential
    ) -> dict[str, Any]:
        """Refund (part of) a paid invoice to the original payment method. One refund per invoice.

        Args:
            customer_id: the customer's id.
            invoice_id: the paid invoice to refund.
            amount_cents: how much, in cents (at most the invoice's amount).
        """
        body = {"invoice_id": invoice_id, "amount_cents": amount_cents}
        result: dict[str, Any] = api.post(f"/customers/{customer_id}/refunds", credential, body)
        return result

    @scoped_tool("write:notes:{customer_id}", ttl=15, timeout=10)
    def add_case_note(
        customer_id: CustomerId, ticket_id: TicketId, text: Text, credential: Credential
    ) -> dict[str, Any]:
        """Add an internal note to the customer's case history (the customer does not see it).

        Args:
            customer_id: the customer's id.
            ticket_id: the ticket the note is about.
            text: the note.
        """
        body = {"ticket_id": ticket_id, "text": text}
        result: dict[str, Any] = api.post(f"/customers/{customer_id}/notes", credential, body)
        return result

    @scoped_tool("read:kb:*", ttl=30, timeout=10)
    def search_kb(query: Annotated[str, Field(min_length=1, max_length=200)], credential: Credential) -> dict[str, Any]:
        """Search the knowledge base; returns matching articles and the best one's id as ``best``."""
        result: dict[str, Any] = api.get("/kb/search", credential, q=query)
        return result

    @scoped_tool("read:kb:{article_id}", ttl=30, timeout=10)
    def get_article(article_id: ArticleId, credential: Credential) -> dict[str, Any]:
        """Read one knowledge-base article."""
        result: dict[str, Any] = api.get(f"/kb/{article_id}", credential)
        return result

    @scoped_tool("write:replies:{ticket_id}", ttl=15, timeout=10)
    def post_reply(
        ticket_id: TicketId, text: Annotated[str, Field(min_length=1, max_length=2000)], credential: Credential
    ) -> dict[str, Any]:
        """Send the customer the reply to their ticket (to the address on their account).

        Args:
            ticket_id: the ticket being answered.
            text: the reply.
        """
        result: dict[str, Any] = api.post(f"/tickets/{ticket_id}/replies", credential, {"text": text})
        return result

    @scoped_tool("delete:accounts:{customer_id}", ttl=15, timeout=10)
    def delete_account(customer_id: CustomerId, credential: Credential) -> dict[str, Any]:
        """Close a customer's account and delete its data. Irreversible."""
        result: dict[str, Any] = api.request("DELETE", f"/customers/{customer_id}", credential)
        return result

    @scoped_tool("send:email:external", ttl=15, timeout=10)
    def send_external_email(
        to: Annotated[str, Field(max_length=254)],
        subject: Annotated[str, Field(max_length=200)],
        body: Annotated[str, Field(max_length=4000)],
        credential: Credential,
    ) -> dict[str, Any]:
        """Send an e-mail to any address outside the company.

        Args:
            to: the recipient's address.
            subject: the subject line.
            body: the message.
        """
        message = {"to": to, "subject": subject, "body": body}
        result: dict[str, Any] = api.post("/email/external", credential, message)
        return result

    return SupportTools(
        get_customer,
        get_billing,
        issue_refund,
        add_case_note,
        search_kb,
        get_article,
        post_reply,
        delete_account,
        send_external_email,
    )
