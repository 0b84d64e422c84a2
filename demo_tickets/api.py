"""The support API: the protected service behind the help desk's tools. It trusts no one, the agents included.

Every route declares the scope it needs as a template over its path (``read:billing:{customer_id}``) and checks
the presented token with the resource-side Flask decorator: signature, expiry, revocation (synced with the broker
on every request, so a revoked token is refused at once) and that the *verified* claims cover the route's scope.
Alice's billing token is refused at Bob's billing; a reply token for one ticket is refused at another. The two
dangerous operations exist here too — closing an account, e-mailing an outside address — behind scopes the help
desk's app was never granted. Unknown customers, invoices or articles are a 404 problem, and only after the token
was accepted, so a caller without access learns nothing about who exists.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

import flask
from pydantic import BaseModel, Field, ValidationError
from werkzeug.exceptions import HTTPException

from agentwrit_tools import Broker
from agentwrit_tools.demo import BackendContext
from agentwrit_tools.resource import PROBLEM_CONTENT_TYPE
from agentwrit_tools.resource.flask import current_claims, requires

from . import data

__all__ = ["create_support_api"]

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V", bound=Callable[..., Any])
TICKET = r"^T-[A-Za-z0-9]{1,32}$"
MAX_REFUND_CENTS = 50_000


class Problem(Exception):
    """A refusal of the request itself (the token was fine): status, error code and a fixed sentence."""

    def __init__(self, status: int, error_code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error_code, self.detail = status, error_code, detail


class Refund(BaseModel):
    invoice_id: Annotated[str, Field(pattern=r"^INV-\d{4}$")]
    amount_cents: Annotated[int, Field(ge=1, le=MAX_REFUND_CENTS)]


class CaseNote(BaseModel):
    ticket_id: Annotated[str, Field(pattern=TICKET)]
    text: Annotated[str, Field(min_length=1, max_length=1000)]


class Reply(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class Email(BaseModel):
    to: Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, max_length=4000)]


def _problem(status: int, error_code: str, detail: str) -> flask.Response:
    body = {
        "type": f"urn:agentwrit:error:{error_code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": flask.request.path,
        "error_code": error_code,
    }
    return flask.Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)


def _body(model: type[M]) -> M:
    try:
        return model.model_validate(flask.request.get_json(silent=True) or {})
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        raise Problem(422, "invalid_request", f"invalid or missing: {', '.join(fields) or 'body'}") from None


def _customer(customer_id: str) -> dict[str, str]:
    found = data.CUSTOMERS.get(customer_id)
    if found is None:
        raise Problem(404, "not_found", f"no customer {customer_id}")
    return found


def _lineage() -> dict[str, Any]:
    """Who acted, as the verified token says: the agent and the agents its authority was delegated through."""
    claims = current_claims()
    return {"by": claims.sub, "delegated_from": [record.agent for record in claims.delegation_chain]}


class _Ledger:
    """What the agents changed, kept in memory: refunds (one per invoice), notes, replies, closures, e-mails."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.numbers = itertools.count(5001)
        self.refunds: dict[str, dict[str, Any]] = {}
        self.notes: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.closed: set[str] = set()
        self.outbox: list[dict[str, Any]] = []

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.numbers)}"


def _billing(customer_id: str, ledger: _Ledger) -> dict[str, Any]:
    invoices = []
    duplicate: dict[str, Any] | None = None
    for item in data.INVOICES.get(customer_id, []):
        refund = ledger.refunds.get(item["invoice_id"])
        shown = {**item, "amount": data.dollars(item["cents"]), "refund_id": refund["refund_id"] if refund else None}
        invoices.append(shown)
        if item.get("duplicate_of") and duplicate is None:
            duplicate = shown
    open_items = [i for i in invoices if i["status"] == "open"]
    balance = sum(i["cents"] for i in open_items)
    return {
        "customer_id": customer_id,
        "first_name": data.CUSTOMERS[customer_id]["name"].split()[0],
        "balance": data.dollars(balance),
        "balance_cents": balance,
        "open_invoices": ", ".join(f"{i['invoice_id']} {i['amount']}" for i in open_items) or "none",
        "invoices": invoices,
        "duplicate_invoice": duplicate["invoice_id"] if duplicate else None,
        "duplicate_of": duplicate["duplicate_of"] if duplicate else None,
        "duplicate_amount_cents": duplicate["cents"] if duplicate else None,
        "duplicate_refund": duplicate["refund_id"] if duplicate else None,
    }


def _refund(customer_id: str, body: Refund, ledger: _Ledger) -> dict[str, Any]:
    invoice = next((i for i in data.INVOICES.get(customer_id, []) if i["invoice_id"] == body.invoice_id), None)
    if invoice is None:
        raise Problem(404, "not_found", f"no invoice {body.invoice_id} for customer {customer_id}")
    if invoice["status"] != "paid":
        raise Problem(409, "not_refundable", f"invoice {body.invoice_id} is not paid: there is nothing to refund")
    if body.amount_cents > invoice["cents"]:
        raise Problem(422, "invalid_request", f"a refund cannot exceed the invoice ({data.dollars(invoice['cents'])})")
    with ledger.lock:
        existing = ledger.refunds.get(body.invoice_id)
        if existing is not None:  # idempotent per invoice: the same refund, never a second one
            return {**existing, "already_refunded": True}
        refund = {
            "refund_id": ledger.next_id("RF"),
            "customer_id": customer_id,
            "invoice_id": body.invoice_id,
            "amount_cents": body.amount_cents,
            "amount": data.dollars(body.amount_cents),
            **_lineage(),
        }
        ledger.refunds[body.invoice_id] = refund
    return {**refund, "already_refunded": False}


def create_support_api(context: BackendContext) -> flask.Flask:
    """The support API for the broker in ``context``; what the agents write is kept in memory."""
    verifier = Broker(context.broker_url, context.client_id, context.client_secret, revocation_bound=0.0)
    context.on_close(verifier.close)
    app = flask.Flask("demo_tickets.api", static_folder=None)
    ledger = _Ledger()

    def needs(*scopes: str) -> Callable[[V], V]:
        return requires(verifier, list(scopes), access_log=None)

    @app.errorhandler(Problem)
    def problem(exc: Problem) -> flask.Response:
        return _problem(exc.status, exc.error_code, exc.detail)

    @app.errorhandler(HTTPException)
    def http_problem(exc: HTTPException) -> flask.Response:
        status = exc.code or 500
        return _problem(status, "not_found" if status == 404 else "invalid_request", HTTPStatus(status).phrase)

    @app.get("/customers/<customer_id>")
    @needs("read:customers:{customer_id}")
    def customer(customer_id: str) -> dict[str, Any]:
        found = _customer(customer_id)
        status = "closed" if customer_id in ledger.closed else found["status"]
        return {"customer_id": customer_id, **found, "status": status}

    @app.get("/customers/<customer_id>/billing")
    @needs("read:billing:{customer_id}")
    def billing(customer_id: str) -> dict[str, Any]:
        _customer(customer_id)
        return _billing(customer_id, ledger)

    @app.post("/customers/<customer_id>/refunds")
    @needs("write:refunds:{customer_id}")
    def refund(customer_id: str) -> dict[str, Any]:
        _customer(customer_id)
        return _refund(customer_id, _body(Refund), ledger)

    @app.post("/customers/<customer_id>/notes")
    @needs("write:notes:{customer_id}")
    def note(customer_id: str) -> dict[str, Any]:
        _customer(customer_id)
        body = _body(CaseNote)
        with ledger.lock:
            entry = {"note_id": ledger.next_id("N"), "customer_id": customer_id, **body.model_dump(), **_lineage()}
            ledger.notes.append(entry)
        return entry

    @app.delete("/customers/<customer_id>")
    @needs("delete:accounts:{customer_id}")
    def close_account(customer_id: str) -> dict[str, Any]:
        _customer(customer_id)
        with ledger.lock:
            ledger.closed.add(customer_id)
        return {"customer_id": customer_id, "status": "closed", **_lineage()}

    @app.get("/kb/search")
    @needs("read:kb:*")
    def kb_search() -> dict[str, Any]:
        query = flask.request.args.get("q", "")[:200]
        found = data.search_kb(query)
        results = [{"article_id": a, "title": data.KB[a]["title"]} for a in found]
        return {"query": query, "results": results, "best": found[0] if found else None}

    @app.get("/kb/<article_id>")
    @needs("read:kb:{article_id}")
    def kb_article(article_id: str) -> dict[str, Any]:
        article = data.KB.get(article_id)
        if article is None:
            raise Problem(404, "not_found", f"no article {article_id}")
        return {"article_id": article_id, "title": article["title"], "summary": article["summary"]}

    @app.post("/tickets/<ticket_id>/replies")
    @needs("write:replies:{ticket_id}")
    def reply(ticket_id: str) -> dict[str, Any]:
        body = _body(Reply)
        with ledger.lock:
            entry = {"reply_id": ledger.next_id("R"), "ticket_id": ticket_id, "text": body.text, **_lineage()}
            ledger.replies.append(entry)
        return entry

    @app.post("/email/external")
    @needs("send:email:external")
    def external_email() -> dict[str, Any]:
        body = _body(Email)
        with ledger.lock:
            entry = {"message_id": ledger.next_id("M"), **body.model_dump(), **_lineage()}
            ledger.outbox.append(entry)
        return {"message_id": entry["message_id"], "to": body.to}

    return app
