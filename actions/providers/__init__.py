"""Real payment providers behind the one interface of actions.payments (one module per provider).

Each adapter speaks its provider's own protocol and offers the same five things:

- `start(order, urls)` → `PaymentStart`: what the pay page shows (a QR code's text, or a URL to
  send the payer to);
- `parse_notification(headers, body, now)` → `ProviderPayment`: the provider's notification,
  verified as the provider specifies (BadNotification with the refusal reason otherwise), or None
  for a verified notice that pays nothing (a closed trade, a refund);
- `answer(accepted)` → what the provider expects back from the callback;
- `query(order, reference)` → `ProviderPayment` when the provider says the order is paid, else
  None (`reference`: what `start` opened there, kept as a `PaymentAttempt`);
- `refund(order, refund)` → the provider's refund id, or DomainError when the provider refuses.

Credentials come from the configuration (the environment in production; README "Going live with
payment providers"); a method whose credentials are set is served by its adapter, anywhere.
`settle` applies a payment, verified or queried, through `actions.orders.mark_paid`: the same
idempotent path for a notification, the payer's return and `billing reconcile-payments`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import DomainError
from actions.payments import BadNotification, PaymentConfigError, settle_payment
from models import Order, PaymentAttempt, utcnow


class ProviderError(DomainError):
    """The provider could not be reached or answered something unexpected (nothing was changed here)."""


@dataclass(frozen=True)
class PaymentStart:
    """What the pay page shows: a QR code of `qr_text` (WeChat Native) or a redirect to `redirect_url`;
    `reference` is the provider's name for the payment (PayPal's order id), None: the order number."""

    method: str
    qr_text: str | None = None
    redirect_url: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class ProviderPayment:
    """A payment the provider vouches for: which order, its transaction id, how much in which currency."""

    order_number: str
    transaction_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class ReturnUrls:
    """Where the provider sends the payer back (`return_url`) and posts its notification (`notify_url`)."""

    return_url: str
    notify_url: str
    cancel_url: str = ""


@dataclass(frozen=True)
class Answer:
    """The callback's reply as the provider wants it."""

    body: str
    status: int = 200
    mimetype: str = "text/plain"


class Provider(Protocol):
    method: str
    currencies: tuple[str, ...]

    def start(self, order: Order, urls: ReturnUrls) -> PaymentStart: ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime) -> ProviderPayment | None: ...

    def answer(self, accepted: bool, message: str = "") -> Answer: ...

    def query(self, order: Order, reference: str) -> ProviderPayment | None: ...

    def refund(self, order: Order, refund) -> str: ...


# The adapters by method, each with the configuration keys it needs (all of them, or none).
def adapter_classes() -> dict[str, type]:
    from actions.providers.alipay import Alipay
    from actions.providers.paypal import PayPal
    from actions.providers.vnptpay import VNPTPay
    from actions.providers.wechat import WeChatPay

    return {"wechat": WeChatPay, "alipay": Alipay, "paypal": PayPal, "vnptpay": VNPTPay}


def configured_providers(config: Mapping) -> tuple[dict[str, Provider], list[str]]:
    """The adapters whose credentials are set, and the names of keys missing from half-set ones."""
    providers, missing = {}, []
    for method, cls in adapter_classes().items():
        present = [key for key in cls.REQUIRED if config.get(key)]
        if not present:
            continue
        absent = [key for key in cls.REQUIRED if not config.get(key)]
        if absent:
            missing.extend(absent)
            continue
        try:
            providers[method] = cls.from_config(config)
        except Exception as exc:  # the packages raise bare Exceptions for unreadable keys
            raise PaymentConfigError(f"The {method} credentials cannot be used ({', '.join(cls.REQUIRED)}): "
                                     f"{exc}") from None
    return providers, missing


def settle(session: Session, provider: Provider, payment: ProviderPayment, today: date) -> bool:
    """Pay the order the provider vouches for (True), or recognise a repeat (False); BadNotification else."""
    return settle_payment(session, provider.method, payment.order_number, payment.transaction_id, payment.amount,
                          payment.currency, today)


def record_attempt(session: Session, order: Order, started: PaymentStart) -> PaymentAttempt:
    """Remember what was opened at the provider for `order` (once per provider reference)."""
    reference = started.reference or order.number
    attempt = session.scalar(select(PaymentAttempt).where(PaymentAttempt.method == started.method,
                                                          PaymentAttempt.reference == reference))
    if attempt is None:
        attempt = PaymentAttempt(order_id=order.id, method=started.method, reference=reference, created_at=utcnow())
        session.add(attempt)
        session.flush()
    elif attempt.order_id != order.id:
        raise ProviderError(_l("The provider gave a reference already used by another order."))
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


__all__: Sequence[str] = (
    "Answer", "PaymentStart", "Provider", "ProviderError", "ProviderPayment", "ReconcileReport", "ReturnUrls",
    "check_paid", "configured_providers", "latest_reference", "reconcile_payments", "record_attempt", "settle",
)
