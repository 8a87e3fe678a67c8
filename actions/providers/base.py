"""What every provider adapter returns and raises (see actions.providers)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


from actions import DomainError
from models import Order


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
class ProviderRefund:
    """What a provider says of a refund it accepted: its id for the refund, and where the money is —
    "completed" (back with the payer), "processing" (on its way: WeChat Pay's PROCESSING, PayPal's
    PENDING; ask again later) or "failed" (it will not arrive: WeChat Pay's ABNORMAL or CLOSED, PayPal's
    FAILED or CANCELLED), with the provider's own words for why (its status and reason codes, the same in
    every language: "ABNORMAL", "FAILED ECHECK")."""

    refund_id: str
    state: str = "completed"
    reason: str = ""


@dataclass(frozen=True)
class RefundNotice:
    """A provider's verified word that a refund moved on (WeChat Pay's REFUND.SUCCESS / ABNORMAL / CLOSED):
    which refund (`out_refund_no`, ours: "<order number>-R<refund id>"), of which order, how much, and where
    its money now is (`answer`)."""

    order_number: str
    out_refund_no: str
    amount: Decimal
    answer: ProviderRefund


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
                           now: datetime) -> ProviderPayment | RefundNotice | None: ...

    def answer(self, accepted: bool, message: str = "") -> Answer: ...

    def query(self, order: Order, reference: str) -> ProviderPayment | None: ...

    def refund(self, order: Order, refund, notify_url: str = "") -> ProviderRefund: ...
    # `notify_url`: where a provider that notifies refunds (WeChat Pay) posts how one ended; others ignore it.

    # Providers whose refunds can stay "processing" (WeChat Pay, PayPal) also answer
    # `refund_status(order, refund) -> ProviderRefund`; Alipay and VNPT Pay settle a refund in its answer.
