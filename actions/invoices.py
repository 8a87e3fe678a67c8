"""Invoices (seed 000, section 5): invoice titles, invoice requests over unbilled orders, finance review.

发票设置: a company has at most one ordinary title (company name and tax ID required) and one
special VAT title (every field required, plus the general-taxpayer registration document: a PDF,
PNG or JPEG recognised by its first bytes, size-limited, kept once under <folder>/<sha256>).

申请开票: paid orders of a company tree that no request covers are put into one request (one
currency; an electronic ordinary invoice needs an email or a phone, a paper ordinary or special
invoice a postal address; a special one the special title with its document). The orders are
taken with ONE conditional UPDATE (`… WHERE id IN (…) AND status = 'paid' AND invoice_request_id
IS NULL`) checked by rowcount, so an order is never in two open requests: if any was taken
meanwhile, the whole request is refused naming those orders. Finance issues a request (invoice
number and date; its orders become invoiced) or rejects it with a reason (its orders are
released), each a conditional UPDATE on the request's status, so it happens once.

Money is invoiced once. Coins when they are bought: the coin purchase is invoiceable, the orders paid
with coins are not. Money put on the prepaid balance either when it is put there (its recharge
orders) or when it is spent (the orders paid from the balance), in any mix, but never both: per
wallet, what its recharges and its balance-paid orders have invoiced (requested or issued) stays
within what the balance received (its balance now plus what was spent from it, net of refunds) —
balance_invoiced_once, checked with the wallet row locked so two requests cannot both pass.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions import DomainError, in_scope, require_role, scope_company_ids, scoped
from actions.audit import record
from actions.money import format_amount, from_minor, zero
from actions.bank_transfers import FILE_KINDS, FileKind, sniff, store_file
from actions.tenants import InvalidField, validate_credit_code
from actions.text_input import one_line, text_block
from actions.texts import change, changes_param, label_param, message, money_param, setting
from actions.unique import unique_or
from models import (
    INVOICE_REQUEST_STATUSES, INVOICE_STATUSES, INVOICE_TITLE_KINDS, INVOICE_TYPES, ORDER_KINDS, Company,
    InvoiceRequest, InvoiceTitle, Order, User, Wallet, utcnow,
)

CUSTOMER_ROLES = {"customer_admin"}
REVIEW_ROLES = {"finance"}
DEFAULT_DOC_MAX_BYTES = 5 * 1024 * 1024
MAX_ORDERS_PER_REQUEST = 500
MAX_REMARK = 1000
MAX_REASON = 2000
INVOICE_CURRENCIES = ("CNY", "USD")  # coin orders are paid with coins, whose purchase is what gets invoiced
_PHONE = re.compile(r"\+?[\d\s()\-]{3,30}")
NAMED = 30


class AlreadyReviewed(DomainError):
    """The request was issued or rejected already (perhaps by someone else a moment ago)."""


# Invoice documents are checked and stored like bank-transfer receipts (PDF, PNG, JPEG).
DOCUMENT_KINDS = FILE_KINDS


TITLE_FIELDS = {
    "title": _l("Company name on the invoice"),
    "tax_id": _l("Tax ID"),
    "address": _l("Registered address"),
    "phone": _l("Registered phone"),
    "bank_name": _l("Bank"),
    "bank_account": _l("Bank account"),
    "document": _l("General-taxpayer registration"),
}
TITLE_KIND_LABEL = _l("Invoice title type")
TITLE_LIMITS = {"title": 200, "address": 255, "phone": 40, "bank_name": 100, "bank_account": 64}


# --- text checks ------------------------------------------------------------------------------

def _email(value, field) -> str | None:
    text = one_line(value, field, 254, False)
    if text is None:
        return None
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise DomainError(_l("%(field)s: %(address)s is not a valid email address.", field=field,
                             address=text)) from None


def _phone(value, field) -> str | None:
    # A Chinese input method types （０２１）１２３４５６７８: read as (021)12345678 (NFKC), as tax IDs are.
    text = one_line(unicodedata.normalize("NFKC", value or ""), field, 40, False)
    if text is not None and (not _PHONE.fullmatch(text) or sum(c.isdigit() for c in text) < 3):
        raise DomainError(_l("%(field)s: not a phone number (digits, spaces, +, -, brackets).", field=field))
    return text


def _named(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:NAMED])
    return shown + (f" (+{len(labels) - NAMED})" if len(labels) > NAMED else "")


# --- the registration document ------------------------------------------------------------------

def check_document(file_name: str, data: bytes, max_bytes: int) -> FileKind:
    """The document's kind, or DomainError: empty, too big, not PDF/PNG/JPEG, or a name that lies about it."""
    name = os.path.basename((file_name or "").replace("\\", "/"))
    if not data:
        raise DomainError(_l("%(field)s: choose the file (PDF, PNG or JPEG).", field=TITLE_FIELDS["document"]))
    if len(data) > max_bytes:
        raise DomainError(_l("%(name)s is larger than %(max)s MB.", name=name, max=f"{max_bytes / 1048576:g}"))
    kind = sniff(data)
    if kind is None:
        raise DomainError(_l("%(name)s is not a PDF, PNG or JPEG file.", name=name))
    if not name.lower().endswith(kind.extensions):
        raise DomainError(_l("%(name)s is a %(type)s file but its name says otherwise; name it %(ext)s.",
                             name=name, type=kind.content_type, ext=" / ".join(kind.extensions)))
    return kind


store_document = store_file


def document_kind(title: InvoiceTitle) -> FileKind | None:
    """The kind of a title's stored document, from its file name (checked against the bytes on upload)."""
    name = (title.registration_file_name or "").lower()
    return next((k for k in DOCUMENT_KINDS if name.endswith(k.extensions)), None)


def may_view_document(session: Session, actor: User, title: InvoiceTitle) -> bool:
    """Finance sees every title's document; a customer administrator those of their companies."""
    if not actor.active:
        return False
    if actor.role in ("admin", "finance"):
        return True
    return actor.role == "customer_admin" and in_scope(actor, title.company_id, session)


# --- titles ---------------------------------------------------------------------------------------

def save_invoice_title(session: Session, actor: User, company: Company, kind: str, *, title: str, tax_id: str,
                       address: str | None = None, phone: str | None = None, bank_name: str | None = None,
                       bank_account: str | None = None, document_name: str = "", document_data: bytes = b"",
                       folder: str | os.PathLike | None = None,
                       max_bytes: int = DEFAULT_DOC_MAX_BYTES) -> InvoiceTitle:
    """Create or replace the company's title of `kind` (one each), checking what that kind requires."""
    require_role(actor, CUSTOMER_ROLES)
    if company is None or not in_scope(actor, company.id, session):
        raise DomainError(_l("Choose one of your companies."))
    if kind not in INVOICE_TITLE_KINDS:
        raise DomainError(_l("Invoice title: choose ordinary or special."))
    special = kind == "special"
    values = {"title": one_line(title, TITLE_FIELDS["title"], TITLE_LIMITS["title"], True)}
    try:
        values["tax_id"] = validate_credit_code(tax_id)
    except InvalidField as exc:
        raise DomainError(str(exc)) from None
    values["address"] = one_line(address, TITLE_FIELDS["address"], TITLE_LIMITS["address"], special)
    values["phone"] = one_line(phone, TITLE_FIELDS["phone"], TITLE_LIMITS["phone"], special)
    if values["phone"] is not None:
        values["phone"] = _phone(values["phone"], TITLE_FIELDS["phone"])
    values["bank_name"] = one_line(bank_name, TITLE_FIELDS["bank_name"], TITLE_LIMITS["bank_name"], special)
    values["bank_account"] = one_line(bank_account, TITLE_FIELDS["bank_account"], TITLE_LIMITS["bank_account"], special)
    existing = session.scalar(select(InvoiceTitle).where(InvoiceTitle.company_id == company.id,
                                                         InvoiceTitle.kind == kind))
    if document_data or document_name:
        check_document(document_name, document_data, max_bytes)
        if folder is None:
            raise DomainError(_l("Documents cannot be stored here."))
        values["registration_file_sha256"] = store_document(document_data, folder)
        values["registration_file_name"] = os.path.basename(document_name.replace("\\", "/"))[:255]
    elif special and (existing is None or not existing.registration_file_sha256):
        raise DomainError(_l("%(field)s: a special VAT invoice title needs the general-taxpayer registration "
                             "document (PDF, PNG or JPEG); only general taxpayers may ask for special invoices.",
                             field=TITLE_FIELDS["document"]))
    row = existing or InvoiceTitle(company_id=company.id, kind=kind)
    labels = {**TITLE_FIELDS, "registration_file_name": TITLE_FIELDS["document"]}  # the file's hash goes unsaid
    changes = [change(k, labels[k], getattr(row, k, None), v)
               for k, v in values.items() if k in labels and getattr(row, k, None) != v]
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same title was created a moment ago
        raise DomainError(_l("%(company)s has a %(kind)s title already; reload the page.", company=company.name,
                             kind=INVOICE_TITLE_KINDS[kind])) from None
    record(session, actor, "create" if existing is None else "edit", "invoice_title", [row.id],
           message("audit.invoice_title", company=company.name, changes=changes_param(
               [setting("kind", TITLE_KIND_LABEL, kind, INVOICE_TITLE_KINDS), *changes])))
    session.flush()
    return row


# --- requests ---------------------------------------------------------------------------------------

def unbilled_orders_query(actor: User, company: Company | None = None, kind: str | None = None, *, what=Order):
    """A SELECT of the paid orders no invoice request covers, in the actor's scope (or `company`'s tree), of one
    order type if `kind` is given (选择【vip/奥币/云服务】); `what` selects something else of them."""
    query = select(what).where(Order.status == "paid", Order.invoice_request_id.is_(None),
                               Order.invoice_status == "none", Order.currency.in_(INVOICE_CURRENCIES))
    if company is not None:
        query = query.where(Order.company_id.in_(company.subtree_ids()))
    if kind:
        query = query.where(Order.kind == kind)
    return scoped(query, actor, Order.company_id)


def invoice_status_label(order: Order) -> str:
    """The order's invoice column: its status, or for an order paid with coins that their purchase is invoiced."""
    if order.invoice_status == "none" and order.currency == "COIN":
        return str(_l("Invoiced with the coin purchase"))
    return str(INVOICE_STATUSES.get(order.invoice_status, order.invoice_status))


def _through_balance():
    """Orders whose money passed through the prepaid balance: its recharges, and the orders paid from it."""
    return or_(Order.kind == "recharge", Order.payment_method == "balance")


def balance_invoiced_once(session: Session, orders: Sequence[Order]) -> list[str]:
    """Why invoicing `orders` would invoice money of a prepaid balance twice (messages, one per wallet), or [].

    Per company and currency: the balance received R = its balance now + Σ (total − refunded) of the orders
    paid from it (at least its paid recharges); what its recharges and balance-paid orders already in a request
    or invoiced cover, plus these, must stay within R. The wallet rows are locked first (PostgreSQL; SQLite's
    write transaction is one at a time), so a concurrent request over the same balance waits and then sees these."""
    ours = [o for o in orders if o.currency in INVOICE_CURRENCIES and (o.kind == "recharge"
                                                                      or o.payment_method == "balance")]
    problems = []
    for company_id, currency in sorted({(o.company_id, o.currency) for o in ours}):
        wallet = session.scalar(select(Wallet).where(Wallet.company_id == company_id, Wallet.currency == currency,
                                                     Wallet.kind == "prepaid").with_for_update())
        net = Order.total_minor - Order.refunded_minor
        settled = Order.status.in_(("paid", "refunded"))

        def total(condition):
            return func.coalesce(func.sum(case((condition, net), else_=0)), 0)

        spent, invoiced, recharged = session.execute(
            select(total(and_(Order.payment_method == "balance", settled)),
                   total(and_(_through_balance(), Order.invoice_status != "none")),
                   total(and_(Order.kind == "recharge", settled)))
            .where(Order.company_id == company_id, Order.currency == currency)).one()
        asked = [o for o in ours if (o.company_id, o.currency) == (company_id, currency)]
        received = max((wallet.balance_minor if wallet is not None else 0) + spent, recharged)
        if invoiced + sum(o.total_minor - o.refunded_minor for o in asked) > received:
            problems.append(str(_l(
                "%(company)s's %(currency)s balance received %(received)s, of which %(invoiced)s is invoiced already "
                "(its recharges or the orders paid from it): invoicing %(numbers)s too would invoice the same money "
                "twice", company=asked[0].company.name, currency=currency,
                received=format_amount(from_minor(received, currency), currency),
                invoiced=format_amount(from_minor(invoiced, currency), currency),
                numbers=_named([o.number for o in asked]))))
    return problems


def unbilled_order_kinds(session: Session, actor: User, company: Company) -> list[str]:
    """The order types among `company`'s tree's unbilled orders, in ORDER_KINDS' order (the type filter's choices)."""
    present = set(session.scalars(unbilled_orders_query(actor, company, what=Order.kind).distinct()))
    return [kind for kind in ORDER_KINDS if kind in present]


def request_invoice(session: Session, actor: User, company: Company, orders: Sequence[Order], invoice_type: str,
                    *, email: str | None = None, phone: str | None = None, postal_address: str | None = None,
                    remark: str | None = None) -> InvoiceRequest:
    """申请开票: one request over paid, unbilled orders of `company`'s tree, made out to its title."""
    require_role(actor, CUSTOMER_ROLES)
    if company is None or not in_scope(actor, company.id, session):
        raise DomainError(_l("Choose one of your companies."))
    if invoice_type not in INVOICE_TYPES:
        raise DomainError(_l("Invoice type: choose an electronic or paper ordinary invoice, or a special VAT "
                             "invoice."))
    if not orders:
        raise DomainError(_l("Select at least one paid order that has no invoice yet."))
    if len(orders) > MAX_ORDERS_PER_REQUEST:
        raise DomainError(_l("At most %(n)s orders in one invoice request.", n=MAX_ORDERS_PER_REQUEST))
    tree = set(session.scalars(company.subtree_ids()))
    allowed = None if actor.is_staff else scope_company_ids(session, actor)
    problems = []
    outside = [o.number for o in orders if o.company_id not in tree or (allowed is not None
                                                                         and o.company_id not in allowed)]
    if outside:
        problems.append(str(_l("not orders of %(company)s: %(numbers)s", company=company.name,
                               numbers=_named(outside))))
    unpaid = [o.number for o in orders if o.status != "paid"]
    if unpaid:
        problems.append(str(_l("not paid: %(numbers)s", numbers=_named(unpaid))))
    taken = [o.number for o in orders if o.invoice_request_id is not None or o.invoice_status != "none"]
    if taken:
        problems.append(str(_l("already in an invoice request: %(numbers)s", numbers=_named(taken))))
    coins = [o.number for o in orders if o.currency not in INVOICE_CURRENCIES]
    if coins:
        problems.append(str(_l("paid with coins (the coin purchase is invoiced instead): %(numbers)s",
                               numbers=_named(coins))))
    currencies = sorted({o.currency for o in orders if o.currency in INVOICE_CURRENCIES})
    if len(currencies) > 1:
        problems.append(str(_l("one invoice is in one currency; these differ: %(list)s", list="; ".join(
            f"{c}: {_named([o.number for o in orders if o.currency == c])}" for c in currencies))))
    if problems or (problems := balance_invoiced_once(session, orders)):
        raise DomainError(_l("Cannot request an invoice — %(problems)s.", problems="; ".join(problems)))

    email = _email(email, _l("Email"))
    phone = _phone(phone, _l("Mobile phone"))
    postal_address = one_line(postal_address, _l("Postal address"), 255, False)
    remark = text_block(remark, _l("Remark"), MAX_REMARK)
    if invoice_type == "electronic_ordinary":
        if not email and not phone:
            raise DomainError(_l("An electronic invoice is sent by email or text message: give an email address "
                                 "or a mobile phone."))
    elif not postal_address:
        raise DomainError(_l("A paper or special invoice is posted: give the postal address."))
    title_kind = "special" if invoice_type == "special" else "ordinary"
    title = session.scalar(select(InvoiceTitle).where(InvoiceTitle.company_id == company.id,
                                                      InvoiceTitle.kind == title_kind))
    if title is None:
        raise DomainError(_l("%(company)s has no %(kind)s title: add it under Invoice titles first.",
                             company=company.name, kind=INVOICE_TITLE_KINDS[title_kind]))
    if title_kind == "special" and not title.registration_file_sha256:
        raise DomainError(_l("The special VAT invoice title of %(company)s has no general-taxpayer registration "
                             "document: upload it under Invoice titles first.", company=company.name))

    unique = {o.id: o for o in orders}
    ids = sorted(unique)
    numbers = {i: o.number for i, o in unique.items()}
    total = sum((o.total - o.refunded for o in unique.values()), zero(currencies[0]))
    invoice_request = InvoiceRequest(
        company_id=company.id, title_id=title.id, invoice_type=invoice_type, currency=currencies[0], total=total,
        email=email, phone=phone, postal_address=postal_address, remark=remark, status="requested",
        requested_by_id=actor.id, created_at=utcnow(),
    )
    session.add(invoice_request)
    session.flush()
    result = session.execute(
        update(Order)
        .where(Order.id.in_(ids), Order.status == "paid", Order.invoice_request_id.is_(None))
        .values(invoice_request_id=invoice_request.id, invoice_status="requested")
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != len(ids):
        ours = set(session.scalars(select(Order.id).where(Order.id.in_(ids),
                                                          Order.invoice_request_id == invoice_request.id)))
        lost = [numbers[i] for i in ids if i not in ours]
        raise DomainError(_l("Cannot request an invoice — these orders were put into another invoice request or "
                             "changed meanwhile: %(numbers)s. Nothing was requested.", numbers=_named(lost)))
    for order in orders:
        session.expire(order)
    record(session, actor, "request", "invoice_request", [invoice_request.id],
           message("audit.invoice.request", type=label_param("invoice_type", invoice_type), company=company.name,
                   amount=money_param(total, currencies[0]), orders=", ".join(numbers[i] for i in ids)))
    session.flush()
    return invoice_request


def _claim_request(session: Session, invoice_request: InvoiceRequest, **values) -> None:
    request_id = invoice_request.id
    result = session.execute(
        update(InvoiceRequest).where(InvoiceRequest.id == request_id, InvoiceRequest.status == "requested")
        .values(**values).execution_options(synchronize_session=False)
    )
    session.expire(invoice_request)
    if result.rowcount != 1:
        raise AlreadyReviewed(_l("Invoice request #%(id)s was reviewed already (it is %(status)s).", id=request_id,
                                 status=INVOICE_REQUEST_STATUSES.get(invoice_request.status,
                                                                     invoice_request.status)))


def _check_invoice_number(session: Session, number: str, request_id: int) -> None:
    """Refuse an invoice number another issued request carries (the unique index backs this up)."""
    duplicate = session.scalar(select(InvoiceRequest.id).where(InvoiceRequest.invoice_number == number,
                                                               InvoiceRequest.status == "issued",
                                                               InvoiceRequest.id != request_id))
    if duplicate is not None:
        raise DomainError(_l("Invoice number %(number)s was given to request #%(id)s already.", number=number,
                             id=duplicate))


def issue_invoice(session: Session, actor: User, invoice_request: InvoiceRequest, invoice_number: str,
                  invoice_date, today: date) -> None:
    """Finance issues the invoice: number and date recorded, the request's orders become invoiced."""
    require_role(actor, REVIEW_ROLES)
    number = one_line(invoice_number, _l("Invoice number"), 64, True)
    if isinstance(invoice_date, str):
        try:
            invoice_date = date.fromisoformat(invoice_date.strip())
        except ValueError:
            raise DomainError(_l("Invoice date: give a date as YYYY-MM-DD.")) from None
    if not isinstance(invoice_date, date):
        raise DomainError(_l("Invoice date is required."))
    if invoice_date > today:
        raise DomainError(_l("Invoice date: %(date)s is in the future.", date=invoice_date.isoformat()))
    request_id = invoice_request.id
    _check_invoice_number(session, number, request_id)
    not_paid = list(session.scalars(select(Order.number).where(Order.invoice_request_id == request_id,
                                                                 Order.status != "paid")))
    if not_paid:
        raise DomainError(_l("Invoice request #%(id)s: these orders are no longer paid (refunded?): %(numbers)s. "
                             "Reject the request instead.", id=request_id, numbers=_named(not_paid)))
    taken = DomainError(_l("Invoice number %(number)s was given to another request already; nothing was "
                           "changed.", number=number))
    with unique_or("uq_invoice_request_issued_number", taken):
        _claim_request(session, invoice_request, status="issued", invoice_number=number,
                       invoice_date=invoice_date, reviewed_by_id=actor.id, reviewed_at=utcnow())
    result = session.execute(
        update(Order).where(Order.invoice_request_id == request_id).values(invoice_status="invoiced")
        .execution_options(synchronize_session=False)
    )
    record(session, actor, "issue", "invoice_request", [request_id],
           message("audit.invoice.issue", number=number, date=invoice_date.isoformat(), count=result.rowcount))
    session.expire_all()
    session.flush()


def reject_invoice_request(session: Session, actor: User, invoice_request: InvoiceRequest, reason: str) -> None:
    """Finance rejects the request with a reason; its orders are released for another request."""
    require_role(actor, REVIEW_ROLES)
    reason = text_block(reason, _l("Reason"), MAX_REASON)
    if not reason:
        raise DomainError(_l("Reason is required: the customer reads it."))
    request_id = invoice_request.id
    _claim_request(session, invoice_request, status="rejected", reject_reason=reason, reviewed_by_id=actor.id,
                   reviewed_at=utcnow())
    released = list(session.scalars(select(Order.id).where(Order.invoice_request_id == request_id)))
    session.execute(
        update(Order).where(Order.invoice_request_id == request_id)
        .values(invoice_request_id=None, invoice_status="none").execution_options(synchronize_session=False)
    )
    record(session, actor, "reject", "invoice_request", [request_id],
           message("audit.invoice.reject", reason=reason[:200], orders=",".join(str(i) for i in released)))
    session.expire_all()
    session.flush()
