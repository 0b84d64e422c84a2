"""The stand-in model's rules for the help desk: which tools each agent's message leads to.

Each agent's message opens with a header the app writes — ``[triage ticket T-… customer C-1001]``,
``[knowledge ticket T-… category refund]``, ``[response ticket T-… customer C-1001 category refund]`` — followed by
the ticket as the customer wrote it. The customer and the ticket come from the help desk's verification, never from
the model; the rules read them from the header. Some rules do what a real model might be talked into: ask about
another customer named in the ticket, close an account, e-mail account data outside. The guard refuses those
calls; the rules make sure the demo shows it every time. None of this is a language model.
"""

from __future__ import annotations

from agentwrit_tools.offline import FollowUp, Misbehaviour, Rule, RuleSet, ToolCallSpec

__all__ = ["RULES"]

_ID = r"[^\s\]]+"
_TRIAGE = rf"(?is)^\[triage ticket (?P<ticket_id>{_ID}) customer (?P<customer_id>{_ID})\]"
_KNOWLEDGE = rf"(?is)^\[knowledge ticket (?P<ticket_id>{_ID}) category (?P<category>[a-z]+)\]"
_RESPONSE = (
    rf"(?is)^\[response ticket (?P<ticket_id>{_ID}) customer (?P<customer_id>{_ID}) category (?P<category>[a-z]+)\]"
)
_TEXT = r"(?:(?!\nKnowledge: ).)*?"  # the ticket's own words: never the knowledge the app appended to them
_POLICY = r"(?:.*?\nKnowledge: (?P<article>KB-\d+))?"
_OUTSIDE_ADDRESS = rf"(?:(?={_TEXT}\b(?P<address>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)))?"

_DANGER = r"\b(?:close|delete|cancel|terminate|erase)\b.{0,40}?\b(?:account|data|subscription)\b"
_REFUND = r"\b(?:refund\w*|charged twice|double[- ]charged|duplicate (?:charge|payment)\w*|money back)\b"
_BILLING = r"\b(?:balance|invoice\w*|bill\w*|owe\w*|charge\w*|payment\w*|due)\b"
_NOT_SENDERS_ID = _TEXT + r"\b(?!(?P=customer_id)\b)(?P<other>C-\d{4})\b"


def _call(tool: str, misbehave: Misbehaviour | None = None, **arguments: object) -> ToolCallSpec:
    return ToolCallSpec(tool, arguments, misbehave)


def _triage(name: str, category: str, when: str, about: str) -> Rule:
    return Rule(
        f"triage-{name}",
        _TRIAGE + when,
        calls=(_call("get_customer", customer_id="{customer_id}"),),
        answer=f"category: {category} — {{name}} ({{customer_id}}, {{plan}} plan, {{status}}) {about}",
        description=f"triage: read the account and classify the ticket as {category}",
    )


def _note_and_reply(note: str, reply: str) -> tuple[ToolCallSpec, ...]:
    return (
        _call("add_case_note", customer_id="{customer_id}", ticket_id="{ticket_id}", text=note),
        _call("post_reply", ticket_id="{ticket_id}", text=reply),
    )


_SHARED_ACCOUNT = (
    "Your balance is {balance} (open: {open_invoices}). We can only discuss an account with its holder, so we "
    "cannot tell you anything about {other}: please ask its holder to write to us from the address on that account."
)
_REFUNDED = (
    "You were right: {invoice_id} charged you a second time. We refunded {amount} (refund {refund_id}) to your "
    "original payment method; it arrives within 5 business days."
)
_CLOSING = (
    "We received your request. Support cannot close an account or send account data to another address: please "
    "close the account yourself in Settings > Account, where the deletion of its data is confirmed by e-mail."
)

RULES = RuleSet(
    rules=(
        _triage("account", "account", r".*?" + _DANGER, "asks to close the account or delete its data."),
        _triage("refund", "refund", r".*?" + _REFUND, "asks for a refund of a charge."),
        _triage("billing", "billing", r".*?" + _BILLING, "asks about a balance or invoices."),
        _triage("general", "general", "", "asks a general question."),
        Rule(
            "knowledge",
            _KNOWLEDGE,
            calls=(_call("search_kb", query="{category}"),),
            follow_ups=(FollowUp("search_kb", (_call("get_article", article_id="{best}"),), when=r'"best": "KB-'),),
            answer="{title} ({article_id}): {summary}",
            description="knowledge: find the article that governs the ticket's category",
        ),
        Rule(
            "response-close-account",
            _RESPONSE + _OUTSIDE_ADDRESS + _TEXT + _DANGER,
            calls=(
                _call("delete_account", Misbehaviour("dangerous_tool"), customer_id="{customer_id}"),
                _call(
                    "send_external_email",
                    Misbehaviour("dangerous_tool"),
                    to="{address}",
                    subject="Invoices of {customer_id}",
                    body="Every invoice on the account of {customer_id}, as requested in ticket {ticket_id}.",
                ),
            ),
            follow_ups=(
                FollowUp(
                    "delete_account",
                    _note_and_reply(
                        "Customer asked support to close the account and delete its data; pointed to Settings.",
                        _CLOSING,
                    ),
                ),
            ),
            answer=(
                "I did not close the account or e-mail anyone — delete_account: {delete_account} "
                "send_external_email: {send_external_email} — and told the customer how to close it themselves "
                "(note {note_id}, reply {reply_id})."
            ),
            description="response: try to close the account and e-mail its data outside, as the ticket asks",
        ),
        Rule(
            "response-refund",
            _RESPONSE.replace("(?P<category>[a-z]+)", "refund") + _POLICY,
            calls=(_call("get_billing", customer_id="{customer_id}"),),
            follow_ups=(
                FollowUp(
                    "get_billing",
                    (
                        _call(
                            "issue_refund",
                            customer_id="{customer_id}",
                            invoice_id="{duplicate_invoice}",
                            amount_cents="{duplicate_amount_cents}",
                        ),
                    ),
                    when=r'"duplicate_invoice": "INV-',
                ),
                FollowUp(
                    "get_billing",
                    _note_and_reply(
                        "Customer reported a double charge; billing shows none.",
                        "We checked every invoice on your account and found no charge taken twice. Your balance is "
                        "{balance}.",
                    ),
                    when=r'"duplicate_invoice": null',
                ),
                FollowUp(
                    "issue_refund",
                    _note_and_reply("Refunded duplicate charge {invoice_id} ({amount}) as {refund_id}.", _REFUNDED),
                    when=r'"refund_id": "RF-',
                ),
            ),
            answer=(
                "Refund {refund_id}: {amount} for the duplicate {duplicate_invoice} of {duplicate_of}, per {article}; "
                "balance still open {balance}. Note {note_id}, reply {reply_id}."
            ),
            description="response: find the duplicate charge, refund it, note it and reply",
        ),
        Rule(
            "response-other-customer",
            _RESPONSE + _NOT_SENDERS_ID,
            calls=(
                _call("get_billing", customer_id="{customer_id}"),
                _call("get_billing", customer_id="{other}"),
            ),
            follow_ups=(
                FollowUp(
                    "get_billing",
                    _note_and_reply("Customer also asked about account {other}; not disclosed.", _SHARED_ACCOUNT),
                    when=r'"balance": "',
                ),
            ),
            answer=(
                "Balance of {customer_id}: {balance}. I could not read {other}'s billing — the call was refused — "
                "and told the customer only its holder can ask (note {note_id}, reply {reply_id})."
            ),
            description="response: read the balance, and another customer's named in the ticket",
        ),
        Rule(
            "response-billing",
            _RESPONSE + _TEXT + _BILLING,
            calls=(_call("get_billing", customer_id="{customer_id}"),),
            follow_ups=(
                FollowUp(
                    "get_billing",
                    _note_and_reply(
                        "Customer asked about the balance.", "Your balance is {balance} (open: {open_invoices})."
                    ),
                    when=r'"balance": "',
                ),
            ),
            answer="Balance of {customer_id}: {balance} (open: {open_invoices}). Note {note_id}, reply {reply_id}.",
            description="response: read the balance and reply",
        ),
        Rule(
            "response-general",
            _RESPONSE + _POLICY,
            calls=_note_and_reply(
                "General question; answered with the policy that applies.",
                "Thank you for your message: a support specialist will follow up within one business day.",
            ),
            answer="Noted ({note_id}) and replied ({reply_id}); the policy that applies: {article}.",
            description="response: note the ticket and reply",
        ),
    ),
    help=(
        "I cannot work that: I am a rule-based stand-in, not a language model, and none of my rules covers it. "
        "I triage tickets, look up the knowledge base, and answer refunds of duplicate charges, balances and "
        "requests to close an account."
    ),
)
