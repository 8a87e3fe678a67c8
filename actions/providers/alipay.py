"""Alipay (CNY), Open Platform with RSA2 keys (public-key mode): page pay (a redirect to Alipay's
cashier, the default) or pre-create (a QR code to scan with the Alipay app), query, refund.

Follows the Alipay Open Platform documentation (opendocs.alipay.com): `alipay.trade.page.pay`,
`alipay.trade.precreate`, `alipay.trade.query`, `alipay.trade.refund`, and the asynchronous
notification: every parameter but `sign` and `sign_type`, sorted by name and joined as
`k=v&…` (values decoded), verified with Alipay's public key (RSA2, SHA256withRSA); then `app_id`
must be ours and `total_amount` the order's. The callback answers the plain text `success` only
once the notification is applied (anything else and Alipay retries). Requests, their signatures
and the verification of Alipay's answers are the `python-alipay-sdk` package's.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from urllib.error import URLError
from urllib.parse import parse_qsl

from alipay import AliPay as AliPayClient
from alipay import AliPayConfig
from alipay.exceptions import AliPayException, AliPayValidationError
from flask_babel import lazy_gettext as _l

from actions import DomainError
from actions.money import round_money
from actions.payment_errors import BadNotification
from actions.providers.base import (
    Answer, PaymentStart, ProviderError, ProviderPayment, ProviderRefund, ReturnUrls,
)
from actions.providers.wechat import key_text

log = logging.getLogger(__name__)

GATEWAY = "https://openapi.alipay.com/gateway.do"
PAID_STATES = ("TRADE_SUCCESS", "TRADE_FINISHED")
BEIJING = timezone(timedelta(hours=8))
TIMEOUT = 20  # seconds


def pem(value: str, kind: str) -> str:
    """Alipay's tools give keys as bare base64: wrap them as PEM (the parser reads any RSA encoding)."""
    text = key_text(value)
    if "-----BEGIN" in text:
        return text
    body = "".join(text.split())
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n"


def yuan(amount: Decimal) -> str:
    """An amount as Alipay writes it: yuan with two decimals, no grouping ("12800.00")."""
    return f"{round_money(amount, 'CNY'):.2f}"


class _Client(AliPayClient):
    """The SDK's client, stamping requests in Beijing time (Alipay's clock) whatever the server's zone."""

    def build_body(self, method, biz_content=None, **kwargs):
        data = super().build_body(method, biz_content, **kwargs)
        data["timestamp"] = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        return data


class Alipay:
    """The Alipay adapter; configuration keys below (README "Going live with payment providers")."""

    method = "alipay"
    currencies = ("CNY",)
    REQUIRED = ("ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY")
    OPTIONAL = ("ALIPAY_GATEWAY", "ALIPAY_MODE")

    def __init__(self, app_id: str, app_private_key: str, alipay_public_key: str, gateway: str = GATEWAY,
                 mode: str = "page"):
        if mode not in ("page", "qr"):
            raise ValueError("ALIPAY_MODE is page (redirect to Alipay's cashier) or qr (pre-create a QR code)")
        self.app_id, self.mode, self.gateway = app_id, mode, gateway
        self.client = _Client(appid=app_id, app_private_key_string=pem(app_private_key, "PRIVATE KEY"),
                              alipay_public_key_string=pem(alipay_public_key, "PUBLIC KEY"), sign_type="RSA2",
                              config=AliPayConfig(timeout=TIMEOUT))
        # The SDK knows only the production and sandbox gateways: tests point it at their local fake here.
        self.client._gateway = gateway

    @classmethod
    def from_config(cls, config: Mapping) -> Alipay:
        return cls(app_id=str(config["ALIPAY_APP_ID"]), app_private_key=str(config["ALIPAY_APP_PRIVATE_KEY"]),
                   alipay_public_key=str(config["ALIPAY_PUBLIC_KEY"]),
                   gateway=str(config.get("ALIPAY_GATEWAY") or GATEWAY), mode=str(config.get("ALIPAY_MODE") or "page"))

    def _call(self, what: str, request, **kwargs) -> dict:
        try:
            return request(**kwargs)
        except (URLError, OSError) as exc:
            log.warning("Alipay %s: %s", what, exc)
            raise ProviderError(_l("Alipay could not be reached (%(what)s); try again later.", what=what)) from None
        except (AliPayException, AliPayValidationError, ValueError) as exc:
            log.warning("Alipay %s: %s", what, exc)
            raise ProviderError(_l("Alipay answered %(what)s with an unverifiable reply.", what=what)) from None

    def start(self, order, urls: ReturnUrls) -> PaymentStart:
        """Page pay: a signed redirect to Alipay's cashier; QR mode: pre-create and show its `qr_code`."""
        subject = f"Renewdesk {order.number}"
        amount = yuan(order.total)
        if self.mode == "page":
            query = self.client.api_alipay_trade_page_pay(subject=subject, out_trade_no=order.number,
                                                          total_amount=amount, return_url=urls.return_url,
                                                          notify_url=urls.notify_url)
            return PaymentStart(self.method, redirect_url=f"{self.gateway}?{query}")
        answer = self._call("create", self.client.api_alipay_trade_precreate, subject=subject,
                            out_trade_no=order.number, total_amount=amount, notify_url=urls.notify_url)
        if answer.get("code") != "10000" or not answer.get("qr_code"):
            raise ProviderError(_l("Alipay refused the payment of %(number)s: %(message)s", number=order.number,
                                   message=answer.get("sub_msg") or answer.get("msg") or answer.get("code")))
        return PaymentStart(self.method, qr_text=answer["qr_code"])

    def parse_notification(self, headers: Mapping[str, str], body: bytes, now: datetime) -> ProviderPayment | None:
        """Verify an asynchronous notification (RSA2 with Alipay's public key); the payment it reports,
        or None for a verified notice that pays nothing (trade closed, a refund)."""
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        signature = fields.pop("sign", "")
        if fields.get("sign_type", "RSA2") != "RSA2" or not signature:
            raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
        try:
            verified = self.client.verify(dict(fields), signature)
        except (AliPayException, ValueError, TypeError, IndexError):
            verified = False
        if not verified:
            raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
        if fields.get("app_id") != self.app_id:
            raise BadNotification(_l("The notification is for another Alipay app (%(app)s).",
                                     app=fields.get("app_id", "")[:32]), "bad_signature")
        if fields.get("trade_status") not in PAID_STATES or fields.get("refund_fee") or fields.get("gmt_refund"):
            return None
        return self._payment(fields)

    def _payment(self, trade: Mapping) -> ProviderPayment:
        number, trade_no, total = trade.get("out_trade_no"), trade.get("trade_no"), trade.get("total_amount")
        if not all(isinstance(v, str) and v for v in (number, trade_no, total)):
            raise BadNotification(_l("Malformed payment notification."))
        try:
            amount = Decimal(total)
        except InvalidOperation:
            raise BadNotification(_l("Malformed payment notification.")) from None
        if not amount.is_finite() or amount != round_money(amount, "CNY"):
            raise BadNotification(_l("Malformed payment notification."))
        return ProviderPayment(number, trade_no, amount, "CNY")  # Alipay's domestic trades are in CNY

    def answer(self, accepted: bool, message: str = "") -> Answer:
        """Alipay stops retrying on the body `success`, and only on it."""
        return Answer("success", 200) if accepted else Answer("fail", 400)

    def query(self, order, reference: str) -> ProviderPayment | None:
        """The payment of `order` if Alipay says it succeeded; None while it is not (or unknown there)."""
        answer = self._call("query", self.client.api_alipay_trade_query, out_trade_no=order.number)
        if answer.get("code") == "40004" and answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return None
        if answer.get("code") != "10000":
            raise ProviderError(_l("Alipay could not tell about %(number)s: %(message)s", number=order.number,
                                   message=answer.get("sub_msg") or answer.get("msg") or answer.get("code")))
        if answer.get("trade_status") not in PAID_STATES:
            return None
        return self._payment(answer)

    def refund(self, order, refund, notify_url: str = "") -> ProviderRefund:
        """Refund `refund.amount` of the order's trade; the refund's request number, DomainError when refused.
        Alipay pays a refund back in its answer ("10000"): it is completed.

        `out_request_no` is fixed per refund, so asking again (after a timeout) never refunds twice.
        """
        request_no = f"{order.number}-R{refund.id}"
        answer = self._call("refund", self.client.api_alipay_trade_refund,
                            refund_amount=yuan(refund.amount),
                            trade_no=order.provider_ref, out_request_no=request_no,
                            refund_reason=(refund.reason or "")[:256])
        if answer.get("code") != "10000":
            raise DomainError(_l("Alipay refused the refund: %(message)s",
                                 message=answer.get("sub_msg") or answer.get("msg") or answer.get("code")))
        return ProviderRefund(request_no)

