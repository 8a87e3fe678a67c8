"""WeChat Pay API v3 (CNY), direct merchant, Native pay: the pay page shows `code_url` as a QR code.

Follows WeChat Pay's API v3 documentation (pay.weixin.qq.com/doc/v3/merchant): Native order
(`POST /v3/pay/transactions/native`), query by out_trade_no, refund
(`POST /v3/refund/domestic/refunds`) and its query (`GET …/refunds/{out_refund_no}`: a refund is
PROCESSING until WeChat Pay has paid it out), and the notifications (a payment's TRANSACTION.SUCCESS,
a refund's REFUND.SUCCESS / ABNORMAL / CLOSED): `Wechatpay-Signature` is
RSA-SHA256 over "timestamp\\nnonce\\nbody\\n" with the WeChat Pay public key named by
`Wechatpay-Serial`; a timestamp more than 5 minutes away from now is refused (replays); the
`resource` is AES-256-GCM encrypted with the APIv3 key. Requests and the signatures of WeChat's
answers are the `wechatpayv3` package's. Only the "WeChat Pay public key" mode is supported (the
mode WeChat gives new merchants; no platform-certificate download).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import requests
from flask_babel import lazy_gettext as _l
from wechatpayv3 import WeChatPay as WeChatPayClient
from wechatpayv3 import WeChatPayType
from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

from actions import DomainError
from actions.money import EXPONENTS, from_minor, to_minor
from actions.payment_errors import BadNotification
from actions.providers.base import (
    Answer, PaymentStart, ProviderError, ProviderPayment, ProviderRefund, RefundNotice, ReturnUrls,
)

log = logging.getLogger(__name__)

GATEWAY = "https://api.mch.weixin.qq.com"
MAX_CLOCK_SKEW_SECONDS = 5 * 60
TIMEOUT = (5, 20)  # connect, read (seconds)
# A refund's `status`: SUCCESS paid out; PROCESSING on its way; ABNORMAL stuck (the payer's card is closed:
# the merchant pays it out by hand); CLOSED closed without paying.
REFUND_STATES = {"SUCCESS": "completed", "PROCESSING": "processing", "ABNORMAL": "failed", "CLOSED": "failed"}
# The notifications WeChat Pay posts to a notify_url: a payment, and how a refund ended.
PAYMENT_EVENT = "TRANSACTION.SUCCESS"
REFUND_EVENTS = {"REFUND.SUCCESS": "SUCCESS", "REFUND.ABNORMAL": "ABNORMAL", "REFUND.CLOSED": "CLOSED"}


def key_text(value: str) -> str:
    """A PEM key given inline (newlines may be written `\\n`), or the path of a file holding it."""
    value = str(value).strip()
    if not value.startswith("-----") and len(value) < 4096 and _is_file(value):
        return Path(value).read_text(encoding="utf-8")
    return value.replace("\\n", "\n")  # one-line environment values write newlines as \n


def _is_file(value: str) -> bool:
    try:
        return Path(value).is_file()
    except OSError:  # bare base64 keys are no paths: a "component" of 256+ characters is too long a name
        return False


class WeChatPay:
    """The WeChat Pay adapter; configuration keys below (README "Going live with payment providers")."""

    method = "wechat"
    currencies = ("CNY",)
    REQUIRED = ("WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_CERT_SERIAL_NO", "WECHATPAY_PRIVATE_KEY",
                "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID")
    OPTIONAL = ("WECHATPAY_API_URL",)

    def __init__(self, mchid: str, appid: str, cert_serial_no: str, private_key: str, apiv3_key: str,
                 public_key: str, public_key_id: str, api_url: str = GATEWAY):
        if len(apiv3_key.encode()) != 32:
            raise ValueError("WECHATPAY_APIV3_KEY must be the 32-character APIv3 key")
        self.mchid, self.appid, self.apiv3_key = mchid, appid, apiv3_key
        self.public_key_id = public_key_id
        self.public_key = load_public_key(public_key)
        if self.public_key is None:
            raise ValueError("WECHATPAY_PUBLIC_KEY is not a PEM public key")
        self.client = WeChatPayClient(wechatpay_type=WeChatPayType.NATIVE, mchid=mchid, private_key=private_key,
                                      cert_serial_no=cert_serial_no, appid=appid, apiv3_key=apiv3_key,
                                      public_key=public_key, public_key_id=public_key_id, timeout=TIMEOUT)
        # The package has no setting for the gateway: tests point it at their local fake here.
        self.client._core._gate_way = api_url.rstrip("/")

    @classmethod
    def from_config(cls, config: Mapping) -> WeChatPay:
        return cls(mchid=str(config["WECHATPAY_MCHID"]), appid=str(config["WECHATPAY_APPID"]),
                   cert_serial_no=str(config["WECHATPAY_CERT_SERIAL_NO"]),
                   private_key=key_text(config["WECHATPAY_PRIVATE_KEY"]), apiv3_key=str(config["WECHATPAY_APIV3_KEY"]),
                   public_key=key_text(config["WECHATPAY_PUBLIC_KEY"]),
                   public_key_id=str(config["WECHATPAY_PUBLIC_KEY_ID"]),
                   api_url=str(config.get("WECHATPAY_API_URL") or GATEWAY))

    def _call(self, what: str, request, *args, **kwargs) -> tuple[int, dict]:
        try:
            code, text = request(*args, **kwargs)
        except requests.RequestException as exc:
            log.warning("WeChat Pay %s: %s", what, exc)
            raise ProviderError(_l("WeChat Pay could not be reached (%(what)s); try again later.", what=what)) from None
        except Exception as exc:  # the package raises a bare Exception for an answer whose signature fails
            log.warning("WeChat Pay %s: %s", what, exc)
            raise ProviderError(_l("WeChat Pay answered %(what)s with an unverifiable reply.", what=what)) from None
        try:
            data = json.loads(text) if text else {}
        except (TypeError, ValueError):
            data = {}
        return code, data if isinstance(data, dict) else {}

    def start(self, order, urls: ReturnUrls) -> PaymentStart:
        """A Native order at WeChat Pay: its `code_url`, shown as a QR code to scan with WeChat."""
        code, data = self._call("create", self.client.pay, description=f"Renewdesk {order.number}"[:127],
                                out_trade_no=order.number, notify_url=urls.notify_url,
                                amount={"total": to_minor(order.total, order.currency), "currency": order.currency})
        if code != 200 or not isinstance(data.get("code_url"), str):
            raise ProviderError(_l("WeChat Pay refused the payment of %(number)s: %(message)s", number=order.number,
                                   message=data.get("message") or code))
        return PaymentStart(self.method, qr_text=data["code_url"])

    def parse_notification(self, headers: Mapping[str, str], body: bytes,
                           now: datetime) -> ProviderPayment | RefundNotice:
        """Verify a notification as WeChat Pay specifies and read its resource: the payment of a
        TRANSACTION.SUCCESS, or how a refund ended (REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED)."""
        timestamp = headers.get("Wechatpay-Timestamp", "")
        nonce = headers.get("Wechatpay-Nonce", "")
        signature = headers.get("Wechatpay-Signature", "")
        serial = headers.get("Wechatpay-Serial", "")
        try:
            text = body.decode("utf-8")
            sent_at = datetime.fromtimestamp(int(timestamp), timezone.utc)
        except (UnicodeDecodeError, ValueError, OverflowError, OSError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        if abs((now - sent_at).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
            raise BadNotification(_l("The notification's timestamp is more than 5 minutes from now (a replay?)."),
                                  "bad_signature")
        if serial != self.public_key_id:
            raise BadNotification(_l("The notification is signed with an unknown key (%(serial)s).",
                                     serial=serial[:64]), "bad_signature")
        if not nonce or not rsa_verify(timestamp, nonce, text, signature, self.public_key):
            raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
        try:
            data = json.loads(text)
            resource, event = data["resource"], data.get("event_type")
            if event != PAYMENT_EVENT and event not in REFUND_EVENTS:
                raise ValueError(event)
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError(resource.get("algorithm"))
            plain = aes_decrypt(nonce=resource["nonce"], ciphertext=resource["ciphertext"],
                                associated_data=resource.get("associated_data") or "", apiv3_key=self.apiv3_key)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        if plain is None:
            raise BadNotification(_l("The notification's resource does not decrypt with the APIv3 key."),
                                  "bad_signature")
        return self._payment(plain) if event == PAYMENT_EVENT else self._refund_notice(plain, REFUND_EVENTS[event])

    def _refund_notice(self, text: str, event_status: str) -> RefundNotice:
        """How a refund ended, from a decrypted REFUND.* resource (its `refund_status` must agree with the event)."""
        try:
            refund = json.loads(text)
            if refund.get("mchid") != self.mchid:
                raise ValueError("another merchant")
            status = refund["refund_status"]
            number, out_refund_no, refund_id = refund["out_trade_no"], refund["out_refund_no"], refund["refund_id"]
            amount = refund["amount"]["refund"]
            if status != event_status or not isinstance(amount, int) or isinstance(amount, bool) or not all(
                    isinstance(v, str) and v for v in (number, out_refund_no, refund_id)):
                raise ValueError("fields")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        return RefundNotice(number, out_refund_no, from_minor(amount, "CNY"), self._refund_state(refund_id, status))

    def _payment(self, text: str | dict) -> ProviderPayment:
        """The payment in a transaction (decrypted notification resource or query answer)."""
        try:
            trade = json.loads(text) if isinstance(text, str) else text
            if trade.get("mchid") != self.mchid or trade.get("appid") != self.appid:
                raise ValueError("another merchant")
            if trade["trade_state"] != "SUCCESS":
                raise ValueError(trade["trade_state"])
            number, transaction_id = trade["out_trade_no"], trade["transaction_id"]
            total, currency = trade["amount"]["total"], trade["amount"]["currency"]
            if not isinstance(total, int) or isinstance(total, bool) or not all(
                    isinstance(v, str) and v for v in (number, transaction_id, currency)):
                raise ValueError("types")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        if currency not in EXPONENTS:
            raise BadNotification(_l("Payment in an unknown currency %(currency)s.", currency=currency[:8]),
                                  "currency_mismatch")
        return ProviderPayment(number, transaction_id, from_minor(total, currency), currency)

    def answer(self, accepted: bool, message: str = "") -> Answer:
        """WeChat Pay wants 200/204 and no body for success; 4xx with {"code": "FAIL"} makes it retry."""
        if accepted:
            return Answer("", 204, "application/json")
        return Answer(json.dumps({"code": "FAIL", "message": message[:200] or "FAIL"}, ensure_ascii=False), 400,
                      "application/json")

    def query(self, order, reference: str) -> ProviderPayment | None:
        """The payment of `order` if WeChat Pay says it succeeded; None while it is not (or unknown there)."""
        code, data = self._call("query", self.client.query, out_trade_no=order.number)
        if code == 404 or (code == 200 and data.get("trade_state") != "SUCCESS"):
            return None
        if code != 200:
            raise ProviderError(_l("WeChat Pay could not tell about %(number)s: %(message)s", number=order.number,
                                   message=data.get("message") or code))
        return self._payment(data)

    def refund(self, order, refund, notify_url: str = "") -> ProviderRefund:
        """Refund `refund.amount` of the order's payment: WeChat Pay's refund id and where the money is (most
        refunds answer PROCESSING: accepted, not paid out yet); DomainError when refused. WeChat Pay posts how
        it ended to `notify_url` (REFUND.SUCCESS / ABNORMAL / CLOSED); reconcile-payments asks in case it does not.

        `out_refund_no` is fixed per refund, so asking again (after a timeout) never refunds twice.
        """
        amount = {"refund": to_minor(refund.amount, order.currency), "total": to_minor(order.total, order.currency),
                  "currency": order.currency}
        code, data = self._call("refund", self.client.refund, out_refund_no=f"{order.number}-R{refund.id}",
                                amount=amount, transaction_id=order.provider_ref, reason=(refund.reason or "")[:80],
                                notify_url=notify_url or None)
        if code != 200 or data.get("status") not in ("SUCCESS", "PROCESSING") or not data.get("refund_id"):
            raise DomainError(_l("WeChat Pay refused the refund: %(message)s",
                                 message=data.get("message") or data.get("status") or code))
        return self._refund_state(data["refund_id"], data["status"])

    def refund_status(self, order, refund) -> ProviderRefund:
        """Where the money of a refund WeChat Pay accepted is now (query by out_refund_no)."""
        code, data = self._call("refund query", self.client.query_refund, out_refund_no=f"{order.number}-R{refund.id}")
        if code != 200 or data.get("status") not in REFUND_STATES or not data.get("refund_id"):
            raise ProviderError(_l("WeChat Pay did not say where refund %(number)s stands: %(message)s",
                                   number=f"{order.number}-R{refund.id}",
                                   message=data.get("message") or data.get("status") or code))
        return self._refund_state(data["refund_id"], data["status"])

    @staticmethod
    def _refund_state(refund_id, status: str) -> ProviderRefund:
        """Where a refund's money is, by WeChat Pay's status (the reason of a failed one is that status)."""
        state = REFUND_STATES[status]
        return ProviderRefund(str(refund_id), state, status if state == "failed" else "")
