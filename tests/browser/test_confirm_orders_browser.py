"""Cancelling an order asks on the server's confirmation page (no JavaScript confirm()), in Chinese at
1366×768 in Debian's Chromium: the page names the order number, its amount and that no money moves.

Screenshot: tests/artifacts/confirm-order-cancel-zh.png."""
from __future__ import annotations


import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, shot  # noqa: E402
from .test_confirm_browser import submit, zh  # noqa: E402,F401  (zh: the fixture of a Chinese page)

pytestmark = BROWSER


def test_cancelling_an_order_asks_on_its_own_page(zh, live_app):  # noqa: F811 (the imported fixture)
    customer = zh("customer")
    customer.goto(live_app.url("/admin/renewal_center/?months=12"))
    row = customer.locator("#rd-renewal-devices tr.rd-row", has=customer.locator("input.rd-device:enabled")).first
    row.locator("input.rd-device").check()
    submit(customer, "#rd-renew-selected")
    number = customer.inner_text("#rd-order-number").strip()
    amount = customer.inner_text("#rd-order-total").strip()
    dialogs = []
    customer.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    submit(customer, "#rd-cancel-order")
    assert dialogs == [], dialogs  # the server asks, once
    expect(customer.locator("#rd-confirm-page .card-header")).to_have_text(f"取消订单 {number}")
    expect(customer.locator("#rd-confirm-summary")).to_contain_text(number)
    expect(customer.locator("#rd-confirm-summary")).to_contain_text(amount)
    expect(customer.locator("#rd-confirm-note")).to_contain_text("不涉及资金变动")
    expect(customer.locator("#rd-confirm-yes")).to_have_text("取消订单")
    assert live_app.scalar("SELECT status FROM \"order\" WHERE number = :n", n=number) == "pending"
    shot(customer, "confirm-order-cancel-zh")
    submit(customer, "#rd-confirm-back")
    assert live_app.scalar("SELECT status FROM \"order\" WHERE number = :n", n=number) == "pending"
    submit(customer, "#rd-cancel-order")
    submit(customer, "#rd-confirm-yes")
    expect(customer.locator(".alert-success")).to_contain_text(number)
    assert live_app.scalar("SELECT status FROM \"order\" WHERE number = :n", n=number) == "cancelled"
