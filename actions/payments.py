"""Online payment providers behind one interface, and the local sandbox that stands in for them.

WeChat Pay and Alipay take CNY, PayPal takes USD. There is no network here, so every method is
served by a sandbox provider that behaves like the real ones: it shows a pay page, then sends a
notification signed with HMAC-SHA256 to the app's callback, which verifies signature, amount
and currency and pays the order once however often the notification arrives.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import DomainError
from actions.orders import mark_paid, register_provider_refund
from models import Order

PROVIDER_CURRENCIES = {"wechat": ("CNY",), "alipay": ("CNY",), "paypal": ("USD",)}
NOTIFICATION_FIELDS = ("method", "order_number", "amount", "currency", "transaction_id")


class BadNotification(DomainError):
    """A payment notification that is forged, malformed or does not match its order."""


@dataclass(frozen=True)
class SandboxProvider:
    """A stand-in for WeChat Pay, Alipay or PayPal, signing like they do (HMAC over the fields)."""

    method: str
    secret: bytes

    @property
    def currencies(self) -> tuple[str, ...]:
        return PROVIDER_CURRENCIES[self.method]

    def sign(self, payload: dict) -> str:
        message = "&".join(f"{k}={payload[k]}" for k in NOTIFICATION_FIELDS).encode()
        return hmac.new(self.secret + self.method.encode(), message, hashlib.sha256).hexdigest()

    def verify(self, payload: dict, signature: str) -> bool:
        return hmac.compare_digest(self.sign(payload), signature or "")

    def notification(self, order: Order) -> tuple[dict, str]:
        """What the provider sends once the payer has paid `order`."""
        payload = {"method": self.method, "order_number": order.number, "amount": str(order.total),
                   "currency": order.currency, "transaction_id": f"{self.method}-{uuid.uuid4().hex[:20]}"}
        return payload, self.sign(payload)


def provider_for(method: str, secret: str | bytes) -> SandboxProvider:
    """The provider of a payment method, or DomainError for an unknown one."""
    if method not in PROVIDER_CURRENCIES:
        raise DomainError(_l("Unknown payment method %(method)s.", method=method))
    return SandboxProvider(method, secret.encode() if isinstance(secret, str) else secret)


def online_methods(currency: str) -> tuple[str, ...]:
    """The providers that take `currency`: WeChat Pay and Alipay for CNY, PayPal for USD."""
    return tuple(method for method, currencies in PROVIDER_CURRENCIES.items() if currency in currencies)


def check_method(method: str, currency: str) -> None:
    """Refuse a provider that does not take the order's currency (PayPal: USD; WeChat, Alipay: CNY)."""
    if method not in PROVIDER_CURRENCIES:
        raise DomainError(_l("Unknown payment method %(method)s.", method=method))
    if currency not in PROVIDER_CURRENCIES[method]:
        raise DomainError(_l("%(method)s does not take %(currency)s.", method=method, currency=currency))


def handle_notification(session: Session, method: str, payload: dict, signature: str, secret: str | bytes,
                        today: date) -> bool:
    """Verify and apply a provider's notification. True when it paid the order, False for a repeat."""
    provider = provider_for(method, secret)
    if any(not isinstance(payload.get(k), str) for k in NOTIFICATION_FIELDS) or payload["method"] != method:
        raise BadNotification(_l("Malformed payment notification."))
    if not provider.verify(payload, signature):
        raise BadNotification(_l("Bad signature on the payment notification."))
    order = session.scalar(select(Order).where(Order.number == payload["order_number"]))
    if order is None:
        raise BadNotification(_l("No order %(number)s.", number=payload["order_number"]))
    try:
        amount = Decimal(payload["amount"])
    except InvalidOperation:
        raise BadNotification(_l("Malformed payment notification.")) from None
    check_method(method, payload["currency"])
    return mark_paid(session, order, method, payload["transaction_id"], amount, payload["currency"], today)


def sandbox_refund(session: Session, order: Order, refund) -> str:
    """The sandbox provider accepts every refund of an order it was paid through; its refund id."""
    if not order.provider_ref:
        raise DomainError(_l("Order %(number)s has no provider payment to refund.", number=order.number))
    return f"{order.payment_method}-refund-{uuid.uuid4().hex[:20]}"


for _method in PROVIDER_CURRENCIES:
    register_provider_refund(_method, sandbox_refund)
