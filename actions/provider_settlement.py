"""Settling what a provider vouches for (a notification, a query, the reconcile job) through the one
idempotent path, `actions.payments.settle_payment` → `actions.orders.mark_paid`; and asking the providers
where the money of the refunds they accepted but had not paid out ("processing") went
(`actions.orders.settle_refund`)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import DomainError
from actions.payment_errors import BadNotification
from actions.orders import settle_refund
from actions.payments import settle_payment
from actions.providers.base import PaymentStart, Provider, ProviderError, ProviderPayment, RefundNotice
from models import PAYMENT_METHODS, REFUND_STATUSES, Order, OrderRefund, PaymentAttempt, utcnow


def settle(session: Session, provider: Provider, payment: ProviderPayment, today: date) -> bool:
    """Pay the order the provider vouches for (True), or recognise a repeat (False); BadNotification else."""
    return settle_payment(session, provider.method, payment.order_number, payment.transaction_id, payment.amount,
                          payment.currency, today)


def settle_refund_notice(session: Session, method: str, notice: RefundNotice) -> str:
    """Record how a refund ended as its provider's verified notification says (`settle_refund`, once
    however often it is repeated); the refund's status after it. A notification for a refund we did not
    send to that provider, or whose amount or provider refund id differ, is a BadNotification."""
    number, _, refund_id = notice.out_refund_no.rpartition("-R")
    refund = session.get(OrderRefund, int(refund_id)) if refund_id.isdigit() and len(refund_id) < 10 else None
    order = refund.order if refund is not None else None
    if order is None or number != notice.order_number or order.number != number or order.payment_method != method \
            or refund.provider_refund_id not in (None, notice.answer.refund_id):
        raise BadNotification(_l("No refund %(refund)s of ours is at %(method)s.", refund=notice.out_refund_no[:64],
                                 method=PAYMENT_METHODS.get(method, method)), "unknown_order")
    if notice.amount != refund.amount:
        raise BadNotification(_l("Refund %(refund)s: the notification says %(amount)s, the refund is %(ours)s.",
                                 refund=notice.out_refund_no, amount=notice.amount, ours=refund.amount),
                              "amount_mismatch")
    if refund.status not in ("processing", "completed", "not_paid_out"):
        raise BadNotification(_l("Refund %(refund)s is not on its way at the provider (it is %(status)s).",
                                 refund=notice.out_refund_no,
                                 status=REFUND_STATUSES.get(refund.status, refund.status)), "unknown_order")
    return settle_refund(session, refund, notice.answer)


# How long a QR code a provider gave is shown again: WeChat Pay's code_url and Alipay's pre-created qr_code
# last 2 hours; ten minutes less leaves the payer time to scan and pay before the provider closes it.
QR_SHOWN_FOR = timedelta(minutes=110)


def record_attempt(session: Session, order: Order, started: PaymentStart) -> PaymentAttempt:
    """Remember what was opened at the provider for `order` (once per provider reference), with the QR code
    it gave (shown again by `open_qr_attempt`)."""
    reference = started.reference or order.number
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.method == started.method,
                                                          PaymentAttempt.reference == reference))
    now = utcnow()
    if attempt is None:
        attempt = PaymentAttempt(order_id=order.id, method=started.method, reference=reference, created_at=now)
        session.add(attempt)
    elif attempt.order_id != order.id:
        raise ProviderError(_l("The provider gave a reference already used by another order."))
    if started.qr_text:
        attempt.qr_text, attempt.qr_given_at = started.qr_text, now
    session.flush()
    return attempt


def open_qr_attempt(session: Session, order: Order, method: str, now: datetime) -> PaymentAttempt | None:
    """The payment still open at `method` for `order` whose QR code can be shown again: its latest attempt
    there, if the order is still pending and the provider gave a QR code for it less than QR_SHOWN_FOR ago.
    None otherwise (nothing opened, a redirect to the provider's page, an old code): a new one is opened."""
    if order.status != "pending":
        return None
    attempt = session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.order_id == order.id, PaymentAttempt.method == method)
        .order_by(PaymentAttempt.id.desc()).limit(1))
    if attempt is None or not attempt.qr_text or attempt.qr_given_at is None \
            or attempt.qr_given_at < now - QR_SHOWN_FOR:
        return None
    return attempt


def latest_reference(session: Session, order: Order, method: str) -> str | None:
    """The provider's reference of the latest payment opened there for `order`, None if none was."""
    return session.scalar(select(PaymentAttempt.reference).where(
        PaymentAttempt.order_id == order.id, PaymentAttempt.method == method)
        .order_by(PaymentAttempt.id.desc()).limit(1))


def check_paid(session: Session, provider: Provider, order: Order, today: date) -> bool:
    """Ask the provider whether `order` is paid and settle it if so; True when this call paid it.

    Only a payment opened at that provider is asked about (its latest `PaymentAttempt`).
    """
    reference = latest_reference(session, order, provider.method)
    if reference is None:
        return False
    payment = provider.query(order, reference)
    if payment is None:
        return False
    if payment.order_number != order.number:
        raise BadNotification(_l("The provider answered about another order."), "malformed")
    return settle(session, provider, payment, today)


@dataclass
class ReconcileReport:
    """What `billing reconcile-payments` did: orders paid, still unpaid, and failures by order number."""

    paid: list[str] = field(default_factory=list)
    unpaid: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def reconcile_payments(session: Session, providers: Mapping[str, Provider], now: datetime, older_than: timedelta,
                       newer_than: timedelta, today: date, commit=None) -> ReconcileReport:
    """Ask the providers about pending orders created between `newer_than` and `older_than` ago that
    were opened there (PaymentAttempt), and settle the paid ones through `mark_paid` (each order in
    its own savepoint).

    `commit` (optional) is called after each paid order: a run that stops keeps what it settled.
    """
    report = ReconcileReport()
    if not providers:
        return report
    opened = select(PaymentAttempt.order_id).where(PaymentAttempt.method.in_(list(providers)))
    orders = session.scalars(select(Order).where(
        Order.status == "pending", Order.id.in_(opened), Order.total_minor > 0,
        Order.created_at < now - older_than, Order.created_at >= now - newer_than).order_by(Order.id)).all()
    for order in orders:
        number, paid = order.number, False
        methods = set(session.scalars(select(PaymentAttempt.method).where(PaymentAttempt.order_id == order.id)))
        for method, provider in providers.items():
            if method not in methods or order.currency not in provider.currencies:
                continue
            try:
                with session.begin_nested():
                    paid = check_paid(session, provider, order, today)
            except DomainError as exc:
                report.failed.append((number, f"{provider.method}: {exc}"))
                continue
            if paid:
                break
        if paid:
            report.paid.append(number)
            if commit is not None:
                commit()
        else:
            report.unpaid += 1
    return report


@dataclass
class RefundCheck:
    """What asking the providers about processing refunds found: refunds paid out, still processing, not paid
    out (with the provider's reason), and the ones that could not be asked (with why), by "order #refund"."""

    completed: list[str] = field(default_factory=list)
    processing: list[str] = field(default_factory=list)
    not_paid_out: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def check_refunds(session: Session, providers: Mapping[str, Provider], refunds: list[OrderRefund] | None = None,
                  commit=None) -> RefundCheck:
    """Ask each refund's provider where its money is, for `refunds` (default: every refund still "processing"),
    and record what it says (`settle_refund`). A refund of a provider that is not configured here, or that
    cannot be asked, is reported as failed and stays as it is. `commit` (optional) is called after each
    refund that changed."""
    check = RefundCheck()
    if refunds is None:
        refunds = list(session.scalars(select(OrderRefund).where(OrderRefund.status == "processing")
                                       .order_by(OrderRefund.id)))
    for refund in refunds:
        order = refund.order
        label = f"{order.number} #{refund.id}"
        if refund.status != "processing":
            check.failed.append((label, str(_l("it is not on its way at a provider."))))
            continue
        provider = providers.get(order.payment_method)
        ask = getattr(provider, "refund_status", None)
        if ask is None:
            check.failed.append((label, str(_l("%(method)s is not configured here: ask it by hand.",
                                               method=PAYMENT_METHODS.get(order.payment_method,
                                                                          order.payment_method)))))
            continue
        try:
            answer = ask(order, refund)
        except DomainError as exc:
            check.failed.append((label, str(exc)))
            continue
        status = settle_refund(session, refund, answer)
        if status == "completed":
            check.completed.append(label)
        elif status == "not_paid_out":
            check.not_paid_out.append((label, refund.failure_reason))
        else:
            check.processing.append(label)
        if status != "processing" and commit is not None:
            commit()
    return check
