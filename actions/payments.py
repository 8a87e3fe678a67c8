"""Online payment providers behind one interface, and the local sandbox that stands in for them.

WeChat Pay and Alipay take CNY, PayPal takes USD, VNPT Pay takes VND. A provider shows the payer its pay page, then
sends a notification signed with HMAC-SHA256 to the app's callback, which verifies signature,
amount and currency and pays the order once however often the notification arrives.

Which methods are offered is configuration (`payment_settings`): in development and testing
every method is served by the local sandbox (its pay page and its development secret); anywhere
else no method is on unless `PAYMENT_METHODS` names it with its own secret and pay page, and
the sandbox does not exist at all.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actions import DomainError
from actions.payment_errors import BadNotification, PaymentConfigError  # noqa: F401 - re-exported
from actions.orders import mark_paid, register_provider_refund
from actions.providers.base import ProviderRefund
from models import NOTIFICATION_REFUSALS, Order, RefusedNotification, utcnow

PROVIDER_CURRENCIES = {"wechat": ("CNY",), "alipay": ("CNY",), "paypal": ("USD",), "vnptpay": ("VND",)}
NOTIFICATION_FIELDS = ("method", "order_number", "amount", "currency", "transaction_id")
# Where the sandbox exists (its pay page, its development secret); nowhere else.
SANDBOX_ENVIRONMENTS = ("development", "testing")
SANDBOX_DEVELOPMENT_SECRET = "sandbox-only-secret"
BODY_EXCERPT_BYTES = 2000  # of a refused notification's body, kept for finance


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


@dataclass(frozen=True)
class PaymentSettings:
    """The online methods this deployment offers, each with its notification secret and pay page.

    `sandbox` is True only in development and testing: the local pay page stands in for every
    provider there. Elsewhere `pay_urls` holds each provider's hosted pay page, a template with
    `{order}`, `{amount}`, `{currency}` and `{method}`.
    """

    sandbox: bool
    methods: tuple[str, ...] = ()
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    pay_urls: Mapping[str, str] = field(default_factory=dict)
    # The real providers (actions.providers) of the enabled methods whose credentials are set.
    adapters: Mapping[str, object] = field(default_factory=dict, repr=False)

    def provider(self, method: str) -> SandboxProvider:
        """The provider of an enabled method; DomainError for an unknown or disabled one."""
        if method not in self.methods:
            raise DomainError(_l("Payment method %(method)s is not enabled.", method=method))
        return SandboxProvider(method, self.secrets[method])

    def pay_url(self, order: Order, method: str) -> str:
        """The provider's pay page for `order` (not for the sandbox: that one is a route of the app)."""
        return self.pay_urls[method].format(order=order.number, amount=str(order.total), currency=order.currency,
                                            method=method)


def _method_list(value) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(dict.fromkeys(str(item).strip().lower() for item in items if str(item).strip()))


def _formats(template: str) -> bool:
    try:
        template.format(order="RC-1", amount="1.00", currency="CNY", method="wechat")
    except (KeyError, IndexError, ValueError):
        return False
    return True


def payment_settings(config: Mapping) -> PaymentSettings:
    """Read and check the payment configuration; PaymentConfigError when it cannot be served.

    `PAYMENT_METHODS` lists the enabled online methods (default: all of them where the sandbox
    exists, none elsewhere). An enabled method whose provider credentials are set (actions.providers,
    e.g. `WECHATPAY_MCHID` …) is served by its real adapter; any other enabled method needs
    `PAYMENT_<METHOD>_SECRET`, and outside development and testing also `PAYMENT_<METHOD>_PAY_URL`;
    no secret has a default. Half-set provider credentials refuse to start.
    """
    from actions.providers import configured_providers

    sandbox = config.get("ENV_NAME") in SANDBOX_ENVIRONMENTS
    configured = config.get("PAYMENT_METHODS")
    methods = tuple(PROVIDER_CURRENCIES) if configured is None and sandbox else _method_list(configured)
    unknown = [m for m in methods if m not in PROVIDER_CURRENCIES]
    if unknown:
        raise PaymentConfigError(f"PAYMENT_METHODS names unknown payment methods: {', '.join(unknown)} "
                                 f"(known: {', '.join(PROVIDER_CURRENCIES)})")
    sandbox_secret = config.get("PAYMENT_SANDBOX_SECRET") or (SANDBOX_DEVELOPMENT_SECRET if sandbox else None)
    providers, missing = configured_providers(config)
    adapters = {method: provider for method, provider in providers.items() if method in methods}
    secrets, pay_urls = {}, {}
    for method in methods:
        if method in adapters:
            continue
        name = method.upper()
        secret = config.get(f"PAYMENT_{name}_SECRET") or (sandbox_secret if sandbox else None)
        if not secret:
            missing.append(f"PAYMENT_{name}_SECRET")
        else:
            secrets[method] = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not sandbox:
            url = config.get(f"PAYMENT_{name}_PAY_URL")
            if not url or not str(url).startswith("https://") or not _formats(str(url)):
                missing.append(f"PAYMENT_{name}_PAY_URL (https://… with only {{order}}, {{amount}}, {{currency}}, "
                               f"{{method}})")
            else:
                pay_urls[method] = str(url)
    if missing:
        raise PaymentConfigError(
            f"Payment methods {', '.join(methods)} are enabled (PAYMENT_METHODS) but their credentials are "
            f"missing: {', '.join(missing)}. Set them, or leave the method out of PAYMENT_METHODS "
            f"(the sandbox exists only with ENV_NAME={' or '.join(SANDBOX_ENVIRONMENTS)})."
        )
    return PaymentSettings(sandbox=sandbox, methods=methods, secrets=secrets, pay_urls=pay_urls, adapters=adapters)


def provider_for(method: str, secret: str | bytes) -> SandboxProvider:
    """The provider of a payment method, or DomainError for an unknown one."""
    if method not in PROVIDER_CURRENCIES:
        raise DomainError(_l("Unknown payment method %(method)s.", method=method))
    return SandboxProvider(method, secret.encode() if isinstance(secret, str) else secret)


def online_methods(currency: str, enabled: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The providers that take `currency` (WeChat Pay and Alipay: CNY, PayPal: USD), of `enabled` if given."""
    return tuple(method for method, currencies in PROVIDER_CURRENCIES.items()
                 if currency in currencies and (enabled is None or method in enabled))


# VNPT Pay's pay page (Chuyển đến trang thanh toán của hệ thống VNPT Pay): the payer picks how to pay, Tiếp theo,
# enters the card (Thẻ thanh toán quốc tế, thẻ ATM nội địa) and pays. The sandbox plays it; nothing typed is kept.
VNPTPAY_CHANNELS = {
    "wallet": _l("VNPT Pay e-wallet"),
    "domestic_card": _l("Domestic ATM card / Internet Banking"),
    "international_card": _l("International payment card (Visa, Mastercard, JCB)"),
    "qr": _l("VNPT Pay QR code"),
}
CARD_CHANNELS = ("domestic_card", "international_card")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def check_sandbox_card(channel: str, number: str, holder: str, expiry: str, cvv: str, today: date) -> dict:
    """The sandbox's VNPT Pay card form: {field: message} for each field at fault (empty: the card is usable).

    A card number is 12 to 19 digits passing the Luhn check (spaces and dashes ignored); the name is required;
    a domestic card's expiry is its issue month MM/YY (not in the future), an international card's MM/YY is
    when it expires (not in the past) and it has a CVV of 3 or 4 digits. Nothing is stored or logged.
    """
    if channel not in CARD_CHANNELS:
        return {} if channel in VNPTPAY_CHANNELS else {"channel": _l("Payment method: choose one of the list.")}
    errors = {}
    digits = "".join(ch for ch in (number or "") if ch not in " -")
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19 and _luhn(digits)):
        errors["card_number"] = _l("Card number: 12 to 19 digits of a valid card (for example 4111 1111 1111 1111).")
    if not (holder or "").strip() or len(holder) > 100:
        errors["card_holder"] = _l("Name on card: enter it as printed on the card.")
    month = None
    text = (expiry or "").strip()
    if len(text) == 5 and text[2] == "/" and text[:2].isdigit() and text[3:].isdigit() and text.isascii():
        mm, yy = int(text[:2]), int(text[3:])
        month = (2000 + yy, mm) if 1 <= mm <= 12 else None
    this_month = (today.year, today.month)
    if channel == "international_card":
        if month is None or month < this_month:
            errors["card_expiry"] = _l("Valid thru: the month the card expires, as MM/YY, not in the past.")
        code = (cvv or "").strip()
        if not (code.isascii() and code.isdigit() and len(code) in (3, 4)):
            errors["card_cvv"] = _l("CVV: the 3 or 4 digits on the back of the card.")
    elif month is None or month > this_month:
        errors["card_expiry"] = _l("Issue date: the month the card was issued, as MM/YY, not in the future.")
    return errors


def check_method(method: str, currency: str, enabled: tuple[str, ...] | None = None) -> None:
    """Refuse a provider that is unknown, not in `enabled` (if given) or does not take the order's currency."""
    if method not in PROVIDER_CURRENCIES:
        raise DomainError(_l("Unknown payment method %(method)s.", method=method))
    if enabled is not None and method not in enabled:
        raise DomainError(_l("Payment method %(method)s is not enabled.", method=method))
    if currency not in PROVIDER_CURRENCIES[method]:
        raise DomainError(_l("%(method)s does not take %(currency)s.", method=method, currency=currency))


def handle_notification(session: Session, method: str, payload: dict, signature: str, secret: str | bytes,
                        today: date) -> bool:
    """Verify and apply a provider's notification. True when it paid the order, False for a repeat.

    A refusal raises BadNotification whose `reason` is a key of models.NOTIFICATION_REFUSALS.
    """
    if method not in PROVIDER_CURRENCIES:
        raise BadNotification(_l("Unknown payment method %(method)s.", method=method), "unknown_method")
    provider = provider_for(method, secret)
    if any(not isinstance(payload.get(k), str) for k in NOTIFICATION_FIELDS) or payload["method"] != method:
        raise BadNotification(_l("Malformed payment notification."))
    if not provider.verify(payload, signature):
        raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
    try:
        amount = Decimal(payload["amount"])
    except InvalidOperation:
        raise BadNotification(_l("Malformed payment notification.")) from None
    return settle_payment(session, method, payload["order_number"], payload["transaction_id"], amount,
                          payload["currency"], today)


def settle_payment(session: Session, method: str, order_number: str, transaction_id: str, amount: Decimal,
                   currency: str, today: date) -> bool:
    """Apply a verified provider payment to its order through `mark_paid`: True when it paid the order,
    False for a repeat; BadNotification (unknown order, amount or currency mismatch, stale) otherwise."""
    order = session.scalar(select(Order).where(Order.number == order_number))
    if order is None:
        raise BadNotification(_l("No order %(number)s.", number=order_number), "unknown_order")
    if not amount.is_finite():
        raise BadNotification(_l("Malformed payment notification."))
    if currency != order.currency or currency not in PROVIDER_CURRENCIES[method]:
        raise BadNotification(_l("Payment for %(number)s does not match the order: %(amount)s %(currency)s.",
                                 number=order.number, amount=str(amount), currency=currency),
                              "currency_mismatch")
    if amount != order.total:
        raise BadNotification(_l("Payment for %(number)s does not match the order: %(amount)s %(currency)s.",
                                 number=order.number, amount=str(amount), currency=currency),
                              "amount_mismatch")
    try:
        return mark_paid(session, order, method, transaction_id, amount, currency, today)
    except BadNotification:
        raise
    except DomainError as exc:
        # Not awaiting payment: paid by another transaction (a repeat), or expired/cancelled (stale).
        raise BadNotification(str(exc), "repeated" if order.status in ("paid", "refunded") else "stale") from None


def refusals_in_last_minute(session: Session, source: str, now: datetime) -> int:
    """How many notifications from `source` were refused in the minute before `now` (the rate limit)."""
    return session.scalar(select(func.count()).select_from(RefusedNotification)
                          .where(RefusedNotification.source == source,
                                 RefusedNotification.at > now - timedelta(minutes=1)))


def record_refusal(session: Session, source: str, method: str, reason: str, detail: str, body: bytes,
                   order_number: object = None) -> RefusedNotification:
    """Keep the trace of a refused notification: reason, method, source, and the start of its body."""
    def clip(text: str, size: int) -> str:
        return text.replace("\x00", "\\x00")[:size]

    row = RefusedNotification(
        at=utcnow(), source=clip(source or "unknown", 45), method=clip(method, 40),
        reason=reason if reason in NOTIFICATION_REFUSALS else "malformed",
        order_number=clip(order_number, 64) if isinstance(order_number, str) else None,
        detail=clip(detail, 255),
        body_excerpt=clip(body[:BODY_EXCERPT_BYTES].decode("utf-8", "replace"), BODY_EXCERPT_BYTES),
    )
    session.add(row)
    session.flush()
    return row


def sandbox_refund(session: Session, order: Order, refund) -> ProviderRefund:
    """The sandbox provider pays back every refund of an order it was paid through, at once."""
    if not order.provider_ref:
        raise DomainError(_l("Order %(number)s has no provider payment to refund.", number=order.number))
    return ProviderRefund(f"{order.payment_method}-refund-{uuid.uuid4().hex[:20]}")


def refund_online_payment(session: Session, order: Order, refund) -> ProviderRefund:
    """Give an online payment back through the app's configured provider adapter, else the sandbox.

    The adapters belong to the running app (its configuration), so they are looked up there; a provider
    that notifies how refunds end (WeChat Pay) is given the app's callback for them.
    """
    from flask import current_app, has_app_context, has_request_context, url_for

    adapters = current_app.extensions["renewdesk_payments"].adapters if has_app_context() else {}
    provider = adapters.get(order.payment_method)
    if provider is None:
        return sandbox_refund(session, order, refund)
    if not order.provider_ref:
        raise DomainError(_l("Order %(number)s has no provider payment to refund.", number=order.number))
    notify_url = url_for("payment_callbacks.notify", method=order.payment_method, _external=True) \
        if has_request_context() else ""
    return provider.refund(order, refund, notify_url=notify_url)


for _method in PROVIDER_CURRENCIES:
    register_provider_refund(_method, refund_online_payment)
