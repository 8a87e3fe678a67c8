"""Paying with the real provider adapters in a real browser, against the local fakes of
tests/provider_fakes.py: a renewal paid with WeChat Pay (the pay page shows the QR code), Alipay
(page pay: off to the cashier, back) and PayPal (approve at PayPal, back, captured), and a VND
subscription (the ON checkout, online) paid with VNPT Pay.

The live app of this module is its own server, started like conftest's (`booting`) with the four
providers' credentials in its environment, pointed at the fakes (served here on 127.0.0.1): the
configuration is the only difference from production. What the provider does on its side (the
payer scans, approves, pays) is the fake's `pay` / `approve`; its signed notification is posted to
the `notify_url` the app gave it, as the provider would. Screenshots: tests/artifacts/provider-*.png.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from provider_fakes import FakeAlipay, FakePayPal, FakeServer, FakeVNPTPay, FakeWeChatPay  # noqa: E402

from .conftest import BROWSER, booting, flashes, serving, shot  # noqa: E402
from .test_subscriptions_browser import subscribe  # noqa: E402

pytestmark = BROWSER

VALID_MST = "0100233488"  # a valid Vietnamese tax code (python-stdnum's vn.mst)


# --- the fakes and the app pointed at them -----------------------------------------------------------

class Fakes:
    """The four providers' fakes, each served on its own loopback port."""

    def __init__(self):
        self.wechat, self.alipay, self.paypal, self.vnpt = FakeWeChatPay(), FakeAlipay(), FakePayPal(), FakeVNPTPay()
        self.servers = []
        for fake in (self.wechat, self.alipay, self.paypal, self.vnpt):
            server = FakeServer(fake)
            fake.url = server.url
            self.servers.append(server)

    def environment(self) -> dict[str, str]:
        """The app's provider configuration, exactly as an operator sets it (README: going live)."""
        env = {}
        for fake in (self.wechat, self.alipay, self.paypal, self.vnpt):
            env.update(fake.config(fake.url))
        return env

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="session")
def fakes():
    made = Fakes()
    yield made
    made.stop()


# This module's server replaces conftest's for its tests (`open_as` asks for `live_app`): the same
# boot, with the providers' credentials in the environment, on a database of its own.
@pytest.fixture(scope="session")
def _boot(fakes):
    with booting(fakes.environment(), tag="_providers") as boot:
        yield boot


@pytest.fixture(scope="session")
def live_app(_boot):
    yield from serving(_boot)


# --- helpers -------------------------------------------------------------------------------------------

def submit(page, selector: str) -> None:
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def post(url: str, headers: dict, body: bytes) -> tuple[int, str]:
    """What the provider does: POST its signed notification to the notify_url the app gave it."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def order_row(live_app, number: str):
    return live_app.rows('SELECT status, payment_method, provider_ref, currency, total_minor FROM "order" '
                         "WHERE number = :n", n=number)[0]


def renew_one_device(page, live_app, currency: str = "CNY") -> tuple[str, str, str]:
    """The customer renews one device for 12 months and opens the pay page; the order number, the
    device number and the new expiry the renewal center promised.

    For a USD renewal the device is first put on the demo's USD package (GPS-Y-USD)."""
    page.goto(live_app.url("/admin/renewal_center/?months=12"))
    rows = page.locator("#rd-renewal-devices tr.rd-row", has=page.locator("input.rd-device:enabled"))
    number = rows.first.get_attribute("data-number")
    if currency == "USD":  # the demo's devices are all on CNY packages
        with live_app.engine.begin() as conn:
            conn.execute(sa.text("UPDATE device SET package_id = (SELECT id FROM package WHERE code = 'GPS-Y-USD') "
                                 "WHERE number = :n"), {"n": number})
    page.goto(live_app.url(f"/admin/renewal_center/?months=12&q={number}"))
    row = page.locator(f"#rd-renewal-devices tr.rd-row[data-number='{number}']")
    new_expiry = row.locator(".rd-new-expiry").inner_text().strip()
    row.locator("input.rd-device").check()
    submit(page, "#rd-renew-selected")
    expect(page.locator("#rd-order-status")).to_have_text("Pending payment")
    order_number = page.inner_text("#rd-order-number").strip()
    assert order_row(live_app, order_number).currency == currency
    submit(page, "#rd-confirm-pay")
    expect(page.locator("#rd-pay-form")).to_be_visible()
    return order_number, number, new_expiry


def choose_and_pay(page, method: str) -> None:
    """Pick the provider on the order's pay page and press Pay (the app then sends the payer to it)."""
    page.check(f"#rd-method-{method}")
    with page.expect_navigation():
        page.click("#rd-pay")


def expect_paid(page, live_app, renewal: tuple[str, str, str], method: str, provider: str) -> None:
    """The order page says the order is paid with the provider, and the device is renewed."""
    order_number, device, new_expiry = renewal
    expect(page.locator(".alert-success")).to_contain_text(f"Order {order_number} is paid with {provider}")
    expect(page.locator("#rd-order-status")).to_have_text("Paid")
    row = order_row(live_app, order_number)
    assert (row.status, row.payment_method) == ("paid", method), row
    assert row.provider_ref, row
    assert str(live_app.scalar("SELECT expires_on FROM device WHERE number = :n", n=device)) == new_expiry


# --- WeChat Pay: the QR code, the signed notification, "I have paid" ------------------------------------------

def test_renewal_paid_with_wechat_pay_qr(open_as, live_app, fakes):
    wechat = fakes.wechat
    page = open_as("customer")
    renewal = renew_one_device(page, live_app)
    order_number = renewal[0]
    shot(page, "provider-wechat-choose")
    choose_and_pay(page, "wechat")

    # The pay page: the code_url WeChat Pay gave, drawn as a QR code by the app.
    assert page.url.endswith(f"/payments/pay/{order_number}/wechat"), page.url
    qr = page.locator("#rd-provider-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100, box
    trade = wechat.trades[order_number]
    assert page.locator("#rd-provider-qr").get_attribute("data-code") == trade["code_url"]
    assert trade["amount"]["currency"] == "CNY"
    assert trade["amount"]["total"] == order_row(live_app, order_number).total_minor
    shot(page, "provider-wechat-qr")
    assert order_row(live_app, order_number).status == "pending"
    # A reload is a GET: the same code again, no other payment opened at WeChat Pay.
    page.reload()
    assert page.locator("#rd-provider-qr").get_attribute("data-code") == trade["code_url"]
    assert live_app.scalar("SELECT count(*) FROM payment_attempt a JOIN \"order\" o ON o.id = a.order_id "
                           "WHERE o.number = :n", n=order_number) == 1

    # The payer scans and pays; WeChat Pay posts its signed, encrypted notification.
    headers, body = wechat.notification(wechat.pay(order_number))
    status, answer = post(trade["notify_url"], {**headers, "Content-Type": "application/json"}, body)
    assert status == 204, (status, answer)
    assert order_row(live_app, order_number).status == "paid"  # settled by the notification itself

    # "I have paid": the order page shows it paid.
    with page.expect_navigation():
        page.click("#rd-provider-paid")
    expect_paid(page, live_app, renewal, "wechat", "WeChat Pay")
    assert order_row(live_app, order_number).provider_ref == wechat.trades[order_number]["transaction_id"]
    shot(page, "provider-wechat-paid")


# --- Alipay: page pay at the cashier, the notification, back to Renewdesk ----------------------------------------

def test_renewal_paid_with_alipay_page_pay(open_as, live_app, fakes):
    alipay = fakes.alipay
    page = open_as("customer")
    renewal = renew_one_device(page, live_app)
    order_number = renewal[0]
    choose_and_pay(page, "alipay")

    # Off to Alipay's cashier (the fake checked the request's RSA2 signature before showing it).
    assert page.url.startswith(f"{alipay.url}/gateway.do?"), page.url
    expect(page).to_have_title("支付宝 收银台")
    expect(page.locator("body")).to_contain_text(order_number)
    trade = alipay.trades[order_number]
    shot(page, "provider-alipay-cashier")

    # The payer pays; Alipay posts its signed notification, answered "success".
    headers, body = alipay.notification(alipay.pay(order_number))
    status, answer = post(trade["notify_url"], headers, body)
    assert (status, answer.strip()) == (200, "success"), (status, answer)
    assert order_row(live_app, order_number).status == "paid"  # settled by the notification itself

    # Alipay sends the payer back to the return_url.
    back = trade["return_url"] + "?" + urlencode({"out_trade_no": order_number, "trade_no": trade["trade_no"],
                                                  "total_amount": trade["total_amount"], "app_id": alipay.app_id})
    page.goto(back)
    expect_paid(page, live_app, renewal, "alipay", "Alipay")
    assert order_row(live_app, order_number).provider_ref == trade["trade_no"]
    shot(page, "provider-alipay-paid")


# --- PayPal: approve at PayPal, back to Renewdesk, which captures ---------------------------------------------

def test_renewal_paid_with_paypal_approve_and_capture(open_as, live_app, fakes):
    paypal = fakes.paypal
    page = open_as("customer")
    renewal = renew_one_device(page, live_app, currency="USD")
    order_number = renewal[0]
    expect(page.locator("#rd-method-paypal")).to_be_visible()
    expect(page.locator("#rd-method-wechat")).to_have_count(0)  # WeChat Pay takes CNY only
    shot(page, "provider-paypal-choose")
    choose_and_pay(page, "paypal")

    # Off to PayPal's checkout with the order PayPal created (USD, our order number on it).
    paypal_order = paypal.order_for(order_number)
    assert page.url == f"{paypal.url}/checkoutnow?token={paypal_order['id']}", page.url
    expect(page).to_have_title("PayPal Checkout")
    amount = paypal_order["purchase_units"][0]["amount"]
    assert amount["currency_code"] == "USD"
    assert round(float(amount["value"]) * 100) == order_row(live_app, order_number).total_minor
    shot(page, "provider-paypal-checkout")
    assert paypal_order["status"] == "PAYER_ACTION_REQUIRED"

    # The payer approves; PayPal sends them back to the return_url; Renewdesk captures.
    paypal.approve(paypal_order["id"])
    return_url = paypal_order["experience"]["return_url"]
    page.goto(return_url + "?" + urlencode({"token": paypal_order["id"], "PayerID": "QYR5Z8XDVJNXQ"}))
    expect_paid(page, live_app, renewal, "paypal", "PayPal")
    capture = paypal.capture_completed(order_number)
    assert paypal.order_for(order_number)["status"] == "COMPLETED"
    assert order_row(live_app, order_number).provider_ref == capture["id"]
    shot(page, "provider-paypal-paid")


# --- VNPT Pay: a VND subscription checked out online ---------------------------------------------------------

def test_vnd_subscription_paid_with_vnpt_pay(open_as, live_app, fakes):
    vnpt = fakes.vnpt
    meet12 = live_app.scalar("SELECT c.id FROM plan_cycle c JOIN service_plan p ON p.id = c.plan_id "
                             "WHERE p.code = 'MEET-BASIC' AND c.months = 12")
    page = open_as("customer")
    page.goto(live_app.url("/admin/subscribe/"))
    subscribe(page, meet12)
    total = page.locator("#rd-total").inner_text().strip()
    assert "₫" in total, total
    shot(page, "provider-vnpt-checkout-step1")
    submit(page, "#rd-next")

    page.fill("#rd-invoice-title", "Acme Logistics Co., Ltd")
    page.fill("#rd-invoice-tax-id", VALID_MST)
    page.fill("#rd-contact-name", "Nguyễn Văn An")
    page.fill("#rd-contact-phone", "+84 24 3825 1234")
    page.fill("#rd-contact-email", "an.nguyen@acme.example")
    page.check("#rd-pay-online")
    page.check("#rd-accept-terms")
    shot(page, "provider-vnpt-checkout-step2")
    submit(page, "#rd-pay")
    expect(page.locator("#rd-checkout-confirm .alert-info")).to_contain_text(total)
    shot(page, "provider-vnpt-checkout-confirm")

    # Confirm: the subscription waits for payment and the payer goes to VNPT Pay's payment page.
    submit(page, "#rd-confirm")
    assert page.url.startswith(f"{vnpt.url}/paygate?token="), f"{page.url}: {flashes(page)}"
    expect(page).to_have_title("VNPT Pay")
    subscription = live_app.rows(
        'SELECT s.id, s.number, s.status, o.number AS order_number, o.total_minor, o.currency FROM subscription s '
        'JOIN subscription_order l ON l.subscription_id = s.id JOIN "order" o ON o.id = l.order_id '
        "WHERE o.status = 'pending' AND o.currency = 'VND' ORDER BY o.id DESC LIMIT 1")[0]
    assert subscription.status == "pending_payment", subscription
    trade = vnpt.trades[subscription.order_number]
    assert (trade["AMOUNT"], trade["CURRENCY_CODE"]) == (str(subscription.total_minor), "704"), trade  # whole dong
    shot(page, "provider-vnpt-paygate")

    # The payer pays; VNPT Pay posts its signed PAY_RESULT IPN, then sends the payer back.
    headers, body = vnpt.notification(vnpt.pay(subscription.order_number))
    status, answer = post(trade["NOTIFY_URL"], headers, body)
    assert status == 200 and json.loads(answer)["RESPONSE_CODE"] == "00", (status, answer)
    assert order_row(live_app, subscription.order_number).status == "paid"  # settled by the IPN itself
    page.goto(trade["RETURN_URL"] + "?" + urlencode({"MERCHANT_ORDER_ID": subscription.order_number,
                                                     "RESPONSE_CODE": "00"}))
    expect(page.locator(".alert-success")).to_contain_text(
        f"Order {subscription.order_number} is paid with VNPT Pay")
    row = order_row(live_app, subscription.order_number)
    assert (row.status, row.payment_method) == ("paid", "vnptpay"), row
    shot(page, "provider-vnpt-paid")

    # The subscription started.
    page.goto(live_app.url(f"/admin/subscription/view/{subscription.id}/"))
    expect(page.locator("#rd-state")).to_have_text("Active")
    assert live_app.scalar("SELECT status FROM subscription WHERE id = :s", s=subscription.id) == "active"
    shot(page, "provider-vnpt-subscription-active")
    assert re.fullmatch(r"SUB\d+", subscription.number), subscription.number
