"""PayPal (USD): Orders v2 create → the payer approves at PayPal → capture; webhooks; refund of a capture.

Follows PayPal's REST API reference (developer.paypal.com/docs/api): OAuth 2.0 client credentials
(`POST /v1/oauth2/token`), `POST /v2/checkout/orders` (intent CAPTURE, our order number as
`custom_id` and `invoice_id`, the payer sent to the `payer-action` link), `GET
/v2/checkout/orders/{id}`, `POST /v2/checkout/orders/{id}/capture`, `POST
/v2/payments/captures/{id}/refund`, and webhooks verified the way PayPal documents for any
integration: `POST /v1/notifications/verify-webhook-signature` with the `PAYPAL-*` transmission
headers, our webhook id and the event, answered `SUCCESS`. Every state-changing call carries a
`PayPal-Request-Id` derived from our order or refund, so a retry never pays or refunds twice.
Plain `requests` calls (PayPal's server SDK cannot be pointed at a local fake).

Events acted on: `PAYMENT.CAPTURE.COMPLETED` (paid) and `CHECKOUT.ORDER.APPROVED` (the payer
approved but never came back: capture it now); any other verified event is acknowledged.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

import requests
from flask_babel import lazy_gettext as _l

from actions import DomainError
from actions.money import EXPONENTS, exponent, round_money
from actions.payment_errors import BadNotification
from actions.providers.base import (
    Answer, PaymentStart, ProviderError, ProviderPayment, ProviderRefund, ReturnUrls,
)

log = logging.getLogger(__name__)

API = "https://api-m.paypal.com"
TIMEOUT = (5, 30)  # connect, read (seconds)
# A refund's `status`: COMPLETED with the payer; PENDING on its way; FAILED or CANCELLED never paid out.
REFUND_STATES = {"COMPLETED": "completed", "PENDING": "processing", "FAILED": "failed", "CANCELLED": "failed"}
HEADERS = ("PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL",
           "PAYPAL-AUTH-ALGO")


def value(amount: Decimal, currency: str) -> str:
    """An amount as PayPal writes it: the currency's decimals, no grouping ("88.00")."""
    return f"{round_money(amount, currency):.{exponent(currency)}f}"


class PayPal:
    """The PayPal adapter; configuration keys below (README "Going live with payment providers")."""

    method = "paypal"
    currencies = ("USD",)
    REQUIRED = ("PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET", "PAYPAL_WEBHOOK_ID")
    OPTIONAL = ("PAYPAL_API_URL",)

    def __init__(self, client_id: str, client_secret: str, webhook_id: str, api_url: str = API):
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.api_url = api_url.rstrip("/")
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping) -> PayPal:
        return cls(client_id=str(config["PAYPAL_CLIENT_ID"]), client_secret=str(config["PAYPAL_CLIENT_SECRET"]),
                   webhook_id=str(config["PAYPAL_WEBHOOK_ID"]), api_url=str(config.get("PAYPAL_API_URL") or API))

    # --- the REST calls -----------------------------------------------------------------------

    def _access_token(self) -> str:
        with self._lock:
            if self._token is not None and self._token[1] > time.monotonic():
                return self._token[0]
            response = self._send("token", "POST", "/v1/oauth2/token", auth=(self.client_id, self.client_secret),
                                   data={"grant_type": "client_credentials"}, token=False)
            data = self._json(response)
            if response.status_code != 200 or not data.get("access_token"):
                raise ProviderError(_l("PayPal refused the credentials (%(what)s).", what=response.status_code))
            lifetime = int(data.get("expires_in") or 0)
            self._token = (data["access_token"], time.monotonic() + max(lifetime - 60, 0))
            return self._token[0]

    def _send(self, what: str, verb: str, path: str, token: bool = True, request_id: str | None = None,
              **kwargs) -> requests.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {self._access_token()}"
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        try:
            return requests.request(verb, self.api_url + path, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            log.warning("PayPal %s: %s", what, exc)
            raise ProviderError(_l("PayPal could not be reached (%(what)s); try again later.", what=what)) from None

    @staticmethod
    def _json(response: requests.Response) -> dict:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _problem(data: dict, fallback) -> str:
        details = data.get("details") if isinstance(data.get("details"), list) else []
        described = "; ".join(str(d.get("description") or d.get("issue")) for d in details if isinstance(d, dict))
        return described or str(data.get("message") or data.get("name") or fallback)

    # --- the adapter ----------------------------------------------------------------------------

    def start(self, order, urls: ReturnUrls) -> PaymentStart:
        """A PayPal order for ours; the payer is sent to PayPal to approve it."""
        body = {"intent": "CAPTURE", "purchase_units": [{
            "reference_id": order.number, "custom_id": order.number, "invoice_id": order.number,
            "description": f"Renewdesk {order.number}",
            "amount": {"currency_code": order.currency, "value": value(order.total, order.currency)}}],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": urls.return_url, "cancel_url": urls.cancel_url or urls.return_url,
                "user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING", "brand_name": "Renewdesk"}}}}
        response = self._send("create", "POST", "/v2/checkout/orders", json=body,
                              request_id=f"{order.number}-create-{order.total_minor}")
        data = self._json(response)
        link = next((item.get("href") for item in data.get("links") or [] if isinstance(item, dict)
                     and item.get("rel") in ("payer-action", "approve")), None)
        if response.status_code not in (200, 201) or not data.get("id") or not link:
            raise ProviderError(_l("PayPal refused the payment of %(number)s: %(message)s", number=order.number,
                                   message=self._problem(data, response.status_code)))
        return PaymentStart(self.method, redirect_url=link, reference=str(data["id"]))

    def query(self, order, reference: str) -> ProviderPayment | None:
        """The payment of PayPal order `reference`: captured now if the payer approved it; None while not."""
        response = self._send("query", "GET", f"/v2/checkout/orders/{requests.utils.quote(reference, safe='')}")
        if response.status_code == 404:
            return None
        data = self._json(response)
        if response.status_code != 200:
            raise ProviderError(_l("PayPal could not tell about %(number)s: %(message)s", number=order.number,
                                   message=self._problem(data, response.status_code)))
        if data.get("status") == "APPROVED":
            return self._capture(reference)
        return self._captured(data)

    def _capture(self, paypal_order_id: str) -> ProviderPayment | None:
        """Capture an approved PayPal order (once, however often asked); its completed capture, if any."""
        path = f"/v2/checkout/orders/{requests.utils.quote(paypal_order_id, safe='')}"
        response = self._send("capture", "POST", f"{path}/capture", json={},
                              request_id=f"capture-{paypal_order_id}")
        data = self._json(response)
        if response.status_code in (200, 201):
            return self._captured(data)
        issues = {d.get("issue") for d in data.get("details") or [] if isinstance(d, dict)}
        if "ORDER_ALREADY_CAPTURED" in issues:
            again = self._send("query", "GET", path)
            return self._captured(self._json(again)) if again.status_code == 200 else None
        raise ProviderError(_l("PayPal did not capture the payment: %(message)s",
                               message=self._problem(data, response.status_code)))

    def _captured(self, paypal_order: dict) -> ProviderPayment | None:
        """The completed capture of a PayPal order (None while there is none)."""
        if paypal_order.get("status") != "COMPLETED":
            return None
        try:
            unit = paypal_order["purchase_units"][0]
            capture = next(c for c in unit["payments"]["captures"] if c.get("status") == "COMPLETED")
            number = unit.get("custom_id") or capture.get("custom_id") or unit.get("reference_id")
            return self._payment(number, capture)
        except (KeyError, IndexError, TypeError, StopIteration, AttributeError):
            raise BadNotification(_l("Malformed payment notification.")) from None

    def _payment(self, number, capture: dict) -> ProviderPayment:
        try:
            amount, currency = Decimal(capture["amount"]["value"]), capture["amount"]["currency_code"]
            capture_id = capture["id"]
        except (KeyError, TypeError, InvalidOperation):
            raise BadNotification(_l("Malformed payment notification.")) from None
        if not all(isinstance(v, str) and v for v in (number, capture_id, currency)) or not amount.is_finite():
            raise BadNotification(_l("Malformed payment notification."))
        if currency not in EXPONENTS:
            raise BadNotification(_l("Payment in an unknown currency %(currency)s.", currency=currency[:8]),
                                  "currency_mismatch")
        return ProviderPayment(number, capture_id, amount, currency)

    def parse_notification(self, headers: Mapping[str, str], body: bytes, now: datetime) -> ProviderPayment | None:
        """Verify a webhook event with PayPal (verify-webhook-signature); the payment it reports, or None."""
        sent = {name: headers.get(name, "") for name in HEADERS}
        if not all(sent.values()):
            raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
        try:
            event = json.loads(body.decode("utf-8"))
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except (UnicodeDecodeError, ValueError):
            raise BadNotification(_l("Malformed payment notification.")) from None
        check = {"auth_algo": sent["PAYPAL-AUTH-ALGO"], "cert_url": sent["PAYPAL-CERT-URL"],
                 "transmission_id": sent["PAYPAL-TRANSMISSION-ID"], "transmission_sig": sent["PAYPAL-TRANSMISSION-SIG"],
                 "transmission_time": sent["PAYPAL-TRANSMISSION-TIME"], "webhook_id": self.webhook_id,
                 "webhook_event": event}
        response = self._send("verify", "POST", "/v1/notifications/verify-webhook-signature", json=check)
        if response.status_code != 200:
            raise ProviderError(_l("PayPal could not verify the notification (%(what)s).", what=response.status_code))
        if self._json(response).get("verification_status") != "SUCCESS":
            raise BadNotification(_l("Bad signature on the payment notification."), "bad_signature")
        resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
        kind = event.get("event_type")
        if kind == "PAYMENT.CAPTURE.COMPLETED":
            if resource.get("status") != "COMPLETED":
                return None
            return self._payment(resource.get("custom_id") or resource.get("invoice_id"), resource)
        if kind == "CHECKOUT.ORDER.APPROVED" and isinstance(resource.get("id"), str):
            return self._capture(resource["id"])
        return None

    def answer(self, accepted: bool, message: str = "") -> Answer:
        """PayPal retries a webhook until it gets a 2xx."""
        return Answer("", 200) if accepted else Answer(message[:200] or "refused", 400)

    def refund(self, order, refund, notify_url: str = "") -> ProviderRefund:
        """Refund `refund.amount` of the order's capture: PayPal's refund id and where the money is (PENDING:
        not with the payer yet); DomainError when refused."""
        capture_id = requests.utils.quote(order.provider_ref or "", safe="")
        body = {"amount": {"value": value(refund.amount, order.currency), "currency_code": order.currency},
                "invoice_id": f"{order.number}-R{refund.id}", "note_to_payer": (refund.reason or "Refund")[:255]}
        response = self._send("refund", "POST", f"/v2/payments/captures/{capture_id}/refund", json=body,
                              request_id=f"{order.number}-R{refund.id}")
        data = self._json(response)
        if response.status_code not in (200, 201) or data.get("status") not in ("COMPLETED", "PENDING") \
                or not data.get("id"):
            raise DomainError(_l("PayPal refused the refund: %(message)s",
                                 message=self._problem(data, data.get("status") or response.status_code)))
        return self._refund_state(data)

    def refund_status(self, order, refund) -> ProviderRefund:
        """Where the money of a refund PayPal accepted is now (GET /v2/payments/refunds/{id})."""
        refund_id = requests.utils.quote(refund.provider_refund_id or "", safe="")
        response = self._send("refund query", "GET", f"/v2/payments/refunds/{refund_id}")
        data = self._json(response)
        if response.status_code != 200 or data.get("status") not in REFUND_STATES or not data.get("id"):
            raise ProviderError(_l("PayPal did not say where refund %(number)s stands: %(message)s",
                                   number=refund.provider_refund_id,
                                   message=self._problem(data, data.get("status") or response.status_code)))
        return self._refund_state(data)

    @staticmethod
    def _refund_state(data: dict) -> ProviderRefund:
        status = data["status"]
        if REFUND_STATES[status] != "failed":
            return ProviderRefund(str(data["id"]), REFUND_STATES[status])
        details = data.get("status_details") if isinstance(data.get("status_details"), dict) else {}
        why = str(details.get("reason") or "")
        return ProviderRefund(str(data["id"]), "failed", " ".join(filter(None, (status, why))))
