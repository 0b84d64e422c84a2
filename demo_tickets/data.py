"""The made-up company behind the Support Tickets demo: three customers, their invoices, a small knowledge base.

Everything here is invented for the demo. The protected support API serves it; the only other reader is
:func:`verify_sender`, the help desk's own code that matches a ticket's sender to a customer.
"""

from __future__ import annotations

from typing import Any

CUSTOMERS: dict[str, dict[str, str]] = {
    "C-1001": {
        "name": "Alice Moreno",
        "email": "alice.moreno@example.com",
        "plan": "Pro",
        "status": "active",
        "since": "2023-04-02",
    },
    "C-1002": {
        "name": "Bob Moreno",
        "email": "bob.moreno@example.com",
        "plan": "Basic",
        "status": "active",
        "since": "2024-01-15",
    },
    "C-1003": {
        "name": "Chen Wei",
        "email": "chen.wei@example.org",
        "plan": "Team",
        "status": "active",
        "since": "2022-09-30",
    },
}

# Amounts in cents. ``duplicate_of`` is the billing system's own flag: the same charge taken twice.
INVOICES: dict[str, list[dict[str, Any]]] = {
    "C-1001": [
        {"invoice_id": "INV-3301", "date": "2026-02-01", "description": "Pro plan, February", "cents": 4900,
         "status": "paid"},
        {"invoice_id": "INV-3307", "date": "2026-03-01", "description": "Pro plan, March", "cents": 4900,
         "status": "paid"},
        {"invoice_id": "INV-3308", "date": "2026-03-01", "description": "Pro plan, March", "cents": 4900,
         "status": "paid", "duplicate_of": "INV-3307"},
        {"invoice_id": "INV-3315", "date": "2026-04-01", "description": "Pro plan, April", "cents": 4900,
         "status": "open"},
    ],
    "C-1002": [
        {"invoice_id": "INV-3402", "date": "2026-04-01", "description": "Basic plan, April", "cents": 1900,
         "status": "open"},
        {"invoice_id": "INV-3403", "date": "2026-04-03", "description": "Extra seat", "cents": 700,
         "status": "open"},
    ],
    "C-1003": [
        {"invoice_id": "INV-3501", "date": "2026-04-01", "description": "Team plan, April", "cents": 12900,
         "status": "paid"},
    ],
}  # fmt: skip

KB: dict[str, dict[str, Any]] = {
    "KB-3": {
        "title": "How support answers tickets",
        "tags": ["general", "support", "question", "help"],
        "summary": "Every ticket gets a written answer from the address on the account within one business day.",
    },
    "KB-7": {
        "title": "Balances, invoices and household accounts",
        "tags": ["billing", "balance", "invoice", "household", "owe"],
        "summary": (
            "We discuss an account only with its holder, writing from the address on file; members of a household "
            "each write from their own address."
        ),
    },
    "KB-12": {
        "title": "Duplicate charges",
        "tags": ["refund", "duplicate", "charge", "charged", "twice"],
        "summary": "A duplicate charge is refunded in full to the original payment method within 5 business days.",
    },
    "KB-21": {
        "title": "Closing an account and deleting its data",
        "tags": ["account", "close", "delete", "data", "cancel"],
        "summary": (
            "The holder closes an account and deletes its data in Settings > Account, confirmed by e-mail; support "
            "never deletes an account on request and never sends account data to another address."
        ),
    },
}


def dollars(cents: int) -> str:
    """``$49.00``."""
    return f"${cents / 100:,.2f}"


def verify_sender(sender: str) -> str | None:
    """The customer a ticket's sender is, or None: an exact (case-insensitive) match on the address on file.

    This is the help desk's code, run before any agent sees the ticket: a model never decides who wrote it, and a
    name or customer id written *in* the ticket counts for nothing.
    """
    address = sender.strip().lower()
    for customer_id, customer in CUSTOMERS.items():
        if customer["email"] == address:
            return customer_id
    return None


def search_kb(query: str) -> list[str]:
    """Article ids ranked by how many of the query's words their title and tags hold (best first)."""
    words = {w for w in query.lower().replace(",", " ").split() if len(w) > 2}
    scored = []
    for article_id, article in KB.items():
        haystack = set(article["tags"]) | set(article["title"].lower().split())
        score = len(words & haystack)
        if score:
            scored.append((-score, article_id))
    return [article_id for _, article_id in sorted(scored)]
