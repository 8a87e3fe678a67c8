"""VNPT Pay (VND): redirect to VNPT Pay's payment page, signed IPN, query, refund.

WHICH DOCUMENT, WHAT WAS ASSUMED. VNPT Pay hands its merchant integration specification
("Tài liệu đặc tả kết nối Cổng thanh toán VNPT Pay") to merchants with their contract; it is not
public and was not available when this adapter was written. The adapter follows the scheme that
specification is known to use and that Vietnamese gateways share (VNPAY, MoMo, AppotaPay publish
theirs): JSON messages with an `ACTION`, the merchant's `MERCHANT_SERVICE_ID`, our
`MERCHANT_ORDER_ID`, the amount in whole dong (`AMOUNT`), `CURRENCY_CODE` 704 (ISO 4217, VND),
times as `yyyyMMddHHmmss` in Vietnam time (GMT+7), and a `SECURE_CODE` checksum: SHA-256 (hex,
upper case) of the message's signed fields, in the order listed in `SIGNED` below, joined by "|",
followed by "|" and the merchant's secret key. Assumed, and to be checked against the document
VNPT Pay provides before going live (every name lives in `SIGNED`, `PATHS` and this module only):
the endpoint paths, the exact list and order of the signed fields of each message, the response
code "00" for success, `PAYMENT_STATUS` "SUCCESS" in query answers, and that the merchant answers
an IPN with a signed `RESPONSE_CODE` "00" once it is applied (anything else: the gateway retries).
The payer's return is never trusted: it only triggers a signed query (admin_views.provider_payments).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import requests
from flask_babel import lazy_gettext as _l

from actions import DomainError
from actions.money import to_minor
from actions.payment_errors import BadNotification
from actions.providers.base import (
    Answer, PaymentStart, ProviderError, ProviderPayment, ProviderRefund, ReturnUrls,
)

log = logging.getLogger(__name__)

API = "https://pay.vnptpay.vn"
VERSION = "1.0.6"
VND = "704"
VIETNAM = timezone(timedelta(hours=7))
TIMEOUT = (5, 30)

PATHS = {"INIT": "/rest/payment/v1.0.6/init", "QUERY": "/rest/payment/v1.0.6/query",
         "REFUND": "/rest/payment/v1.0.6/refund"}
# The fields of each message covered by SECURE_CODE, in signing order.
SIGNED = {
    "INIT": ("ACTION", "VERSION", "MERCHANT_SERVICE_ID", "MERCHANT_ORDER_ID", "AMOUNT", "AMOUNT_DETAIL", "SERVICE_ID",
             "DEVICE", "LOCALE", "CURRENCY_CODE", "PAYMENT_METHOD", "DESCRIPTION", "CREATE_DATE", "CLIENT_IP"),
    "INIT_RESULT": ("RESPONSE_CODE", "MERCHANT_SERVICE_ID", "MERCHANT_ORDER_ID", "CREATE_DATE", "REDIRECT_URL"),
    "PAY_RESULT": ("ACTION", "RESPONSE_CODE", "MERCHANT_SERVICE_ID", "MERCHANT_ORDER_ID", "AMOUNT", "CURRENCY_CODE",
                   "VNPTPAY_TRANSACTION_ID", "PAYMENT_METHOD", "PAY_DATE", "ADDITIONAL_INFO"),
    "IPN_ANSWER": ("RESPONSE_CODE", "DESCRIPTION"),
    "QUERY": ("ACTION", "VERSION", "MERCHANT_SERVICE_ID", "MERCHANT_ORDER_ID", "CREATE_DATE"),
    "QUERY_RESULT": ("RESPONSE_CODE", "MERCHANT_SERVICE_ID", "MERCHANT_ORDER_ID", "AMOUNT", "CURRENCY_CODE",
                     "PAYMENT_STATUS", "VNPTPAY_TRANSACTION_ID"),
    "REFUND": ("ACTION", "VERSION", "MERCHANT_SERVICE_ID", "MERCHANT_ORDER_ID", "VNPTPAY_TRANSACTION_ID",
               "REFUND_ID", "AMOUNT", "CREATE_DATE"),
    "REFUND_RESULT": ("RESPONSE_CODE", "MERCHANT_SERVICE_ID", "REFUND_ID", "REFUND_TRANSACTION_ID"),
}


def secure_code(fields: Mapping, message: str, secret: str) -> str:
    """SHA-256 (upper-case hex) of the message's signed fields joined by "|", then "|" and the secret."""
    text = "|".join(str(fields.get(name, "")) for name in SIGNED[message]) + "|" + secret
    return hashlib.sha256(text.encode("utf-8")).hexdigest().upper()


def vietnam_time(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).astimezone(VIETNAM).strftime("%Y%m%d%H%M%S")


class VNPTPay:
    """The VNPT Pay adapter; configuration keys below (README "Going live with payment providers")."""

    method = "vnptpay"
    currencies = ("VND",)
    REQUIRED = ("VNPTPAY_MERCHANT_SERVICE_ID", "VNPTPAY_SERVICE_ID", "VNPTPAY_SECRET_KEY")
    OPTIONAL = ("VNPTPAY_API_URL",)

    def __init__(self, merchant_service_id: str, service_id: str, secret_key: str, api_url: str = API):
        self.merchant_service_id, self.service_id = merchant_service_id, service_id
        self.secret_key, self.api_url = secret_key, api_url.rstrip("/")

    @classmethod
    def from_config(cls, config: Mapping) -> VNPTPay:
        return cls(merchant_service_id=str(config["VNPTPAY_MERCHANT_SERVICE_ID"]),
                   service_id=str(config["VNPTPAY_SERVICE_ID"]), secret_key=str(config["VNPTPAY_SECRET_KEY"]),
                   api_url=str(config.get("VNPTPAY_API_URL") or API))

    def _signed(self, fields: Mapping, message: str) -> bool:
        return hmac.compare_digest(secure_code(fields, message, self.secret_key), str(fields.get("SECURE_CODE", "")))

    def _call(self, action: str, fields: dict, answer_message: str) -> dict:
        fields = dict(fields, ACTION=action, VERSION=VERSION, MERCHANT_SERVICE_ID=self.merchant_service_id)
        fields["SECURE_CODE"] = secure_code(fields, action, self.secret_key)
        try:
            response = requests.post(self.api_url + PATHS[action], json=fields, timeout=TIMEOUT)
            data = response.json()
        except requests.RequestException as exc:
            log.warning("VNPT Pay %s: %s", action, exc)
            raise ProviderError(_l("VNPT Pay could not be reached (%(what)s); try again later.",
                                   what=action.lower())) from None
        except ValueError:
            data = None
        if not isinstance(data, dict) or (data.get("RESPONSE_CODE") == "00" and not self._signed(data, answer_message)):
            raise ProviderError(_l("VNPT Pay answered %(what)s with an unverifiable reply.", what=action.lower()))
        return data

    def start(self, order, urls: ReturnUrls) -> PaymentStart:
        """Open the payment at VNPT Pay; the payer is sent to its REDIRECT_URL."""
        amount = str(to_minor(order.total, "VND"))
        data = self._call("INIT", {
            "MERCHANT_ORDER_ID": order.number, "AMOUNT": amount, "AMOUNT_DETAIL": amount,
            "SERVICE_ID": self.service_id, "DEVICE": "1", "LOCALE": "vi-VN", "CURRENCY_CODE": VND,
            "PAYMENT_METHOD": "VNPTPAY", "DESCRIPTION": f"Renewdesk {order.number}", "CREATE_DATE": vietnam_time(),
            "CLIENT_IP": "127.0.0.1", "RETURN_URL": urls.return_url, "NOTIFY_URL": urls.notify_url}, "INIT_RESULT")
        if data.get("RESPONSE_CODE") != "00" or not data.get("REDIRECT_URL"):
            raise ProviderError(_l("VNPT Pay refused the payment of %(number)s: %(message)s", number=order.number,
                                   message=data.get("DESCRIPTION") or data.get("RESPONSE_CODE")))
        return PaymentStart(self.method, redirect_url=str(data["REDIRECT_URL"]))

    def parse_notification(self, headers: Mapping[str, str], body: bytes, now: datetime) -> ProviderPayment | None:
        """Verify an IPN (SECURE_CODE with the secret key); the payment it reports, or None when it reports
        a failed payment."""
        try:
            fields = json.loads(body.decode("utf-8"))
            if not isinstance(fields, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        if not self._signed(fields, "PAY_RESULT") or fields.get("ACTION") != "PAY_RESULT":
            raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
        if fields.get("MERCHANT_SERVICE_ID") != self.merchant_service_id:
            raise BadNotification(_l("The notification is for another VNPT Pay merchant."), "bad_signature")
        if fields.get("RESPONSE_CODE") != "00":
            return None
        return self._payment(fields)

    def _payment(self, fields: Mapping) -> ProviderPayment:
        number, transaction, amount = (fields.get("MERCHANT_ORDER_ID"), fields.get("VNPTPAY_TRANSACTION_ID"),
                                       fields.get("AMOUNT"))
        if not all(isinstance(v, str) and v for v in (number, transaction, amount)) or not amount.isdigit():
            raise BadNotification(_l("Malformed payment notification."))
        currency = "VND" if fields.get("CURRENCY_CODE") == VND else str(fields.get("CURRENCY_CODE"))[:8]
        return ProviderPayment(number, transaction, Decimal(int(amount)), currency)

    def answer(self, accepted: bool, message: str = "") -> Answer:
        """A signed RESPONSE_CODE: "00" once applied; anything else and VNPT Pay sends the IPN again."""
        reply = {"RESPONSE_CODE": "00" if accepted else "01",
                 "DESCRIPTION": "Success" if accepted else (message[:200] or "Refused")}
        reply["SECURE_CODE"] = secure_code(reply, "IPN_ANSWER", self.secret_key)
        return Answer(json.dumps(reply, ensure_ascii=False), 200 if accepted else 400, "application/json")

    def query(self, order, reference: str) -> ProviderPayment | None:
        """The payment of `order` if VNPT Pay says it succeeded; None while it is not (or unknown there)."""
        data = self._call("QUERY", {"MERCHANT_ORDER_ID": order.number, "CREATE_DATE": vietnam_time()},
                          "QUERY_RESULT")
        if data.get("RESPONSE_CODE") != "00" or data.get("PAYMENT_STATUS") != "SUCCESS":
            return None
        return self._payment(data)

    def refund(self, order, refund, notify_url: str = "") -> ProviderRefund:
        """Refund `refund.amount` of the order's payment; VNPT Pay's refund transaction id, DomainError if refused.
        VNPT Pay answers "00" once the refund is made: it is completed."""
        data = self._call("REFUND", {
            "MERCHANT_ORDER_ID": order.number, "VNPTPAY_TRANSACTION_ID": order.provider_ref or "",
            "REFUND_ID": f"{order.number}-R{refund.id}", "AMOUNT": str(to_minor(refund.amount, "VND")),
            "CREATE_DATE": vietnam_time()}, "REFUND_RESULT")
        if data.get("RESPONSE_CODE") != "00" or not data.get("REFUND_TRANSACTION_ID"):
            raise DomainError(_l("VNPT Pay refused the refund: %(message)s",
                                 message=data.get("DESCRIPTION") or data.get("RESPONSE_CODE")))
        return ProviderRefund(str(data["REFUND_TRANSACTION_ID"]))
