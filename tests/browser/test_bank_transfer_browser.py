"""Bank transfer (seed 000) and the list-chosen address and device type, in Chinese at 1366×768, in
Debian's Chromium: the customer buys coins by bank transfer and sees the payee account, uploads a receipt
whose amount differs from the order (warned as they type and after sending), finance sees the flag in
the list and the receipt image inline, and confirms the amount actually received (credited to the
balance, the order stays unpaid); the company profile's province → city selects; the device-type select.
Screenshots: tests/artifacts/bank-transfer-*-zh.png, province-city-zh.png, device-type-zh.png."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
from playwright.sync_api import expect  # noqa: E402

from .conftest import BROWSER, booting, serving, shot  # noqa: E402

pytestmark = BROWSER

RECEIPT_HTML = """<html><body style="margin:0;font-family:sans-serif;background:#fff">
<div style="width:560px;padding:24px;border:2px solid #c00">
<h2 style="text-align:center;color:#c00;margin:0 0 12px">中国工商银行 电子回单</h2>
<table style="width:100%;font-size:16px;border-collapse:collapse">
<tr><td>付款人</td><td>Acme 物流有限公司</td></tr><tr><td>付款账号</td><td>6222 0000 1111 2222</td></tr>
<tr><td>收款人</td><td>演示科技有限公司</td></tr><tr><td>收款账号</td><td>0200 0045 0920 0123 456</td></tr>
<tr><td>金额</td><td><b>¥2,100.00</b></td></tr><tr><td>附言</td><td>{number}</td></tr></table></div></body></html>"""


@pytest.fixture(scope="session")
def _boot():
    """A server of this module's own: the transfer credits Acme Logistics' balance, which
    test_browser.py's renewal expects to start at zero."""
    with booting(tag="_bank") as boot:
        yield boot


@pytest.fixture(scope="session")
def live_app(_boot):
    yield from serving(_boot)



def _receipt_png(chromium, number: str, folder):
    """A picture of a bank's electronic receipt (drawn by Chromium), as the customer would upload it."""
    context = chromium.new_context(viewport={"width": 620, "height": 330})
    try:
        page = context.new_page()
        page.set_content(RECEIPT_HTML.format(number=number))
        path = folder / "工行电子回单.png"
        page.screenshot(path=str(path))
        return path
    finally:
        context.close()


def test_bank_transfer_with_a_different_amount_in_chinese(chinese_page, chromium, live_app, tmp_path):
    customer = chinese_page("customer")
    customer.goto(live_app.url("/admin/coins/"))
    customer.fill("#rd-amount", "2160.00")
    customer.check("#rd-method-bank_transfer")
    with customer.expect_navigation():
        customer.click("#rd-submit")
    assert "/admin/bank_transfer/upload/" in customer.url
    number = re.search(r"order=([\w-]+)", customer.url).group(1)

    # Step 1: the payee account (对公账户) is on the page.
    payee = customer.locator("#rd-payee-CNY")
    expect(payee).to_contain_text("演示科技有限公司")
    expect(payee).to_contain_text("中国工商银行北京海淀支行")
    expect(payee).to_contain_text("0200 0045 0920 0123 456")
    expect(customer.locator("h5").first).to_contain_text("第一步")

    # Step 2: the receipt, with an amount that differs from the order: warned while typing.
    customer.fill("#rd-payer-company", "Acme 物流有限公司")
    customer.fill("#rd-payer-account", "6222 0000 1111 2222")
    customer.fill("#rd-amount", "2,100.00")
    expect(customer.locator("#rd-amount-warning")).to_be_visible()
    expect(customer.locator("#rd-amount-warning")).to_contain_text("与订单总额")
    customer.fill("#rd-amount", "2160")
    expect(customer.locator("#rd-amount-warning")).to_be_hidden()
    customer.fill("#rd-amount", "2,100.00")
    customer.set_input_files("#rd-file", str(_receipt_png(chromium, number, tmp_path)))
    shot(customer, "bank-transfer-payee-zh")
    with customer.expect_navigation():
        customer.click("#rd-submit")
    warning = customer.locator(".alert-warning")
    expect(warning).to_contain_text("回单金额（¥2,100.00）与订单总额（¥2,160.00）不符")
    expect(customer.locator("#rd-receipts")).to_contain_text("与订单总额不符")
    shot(customer, "bank-transfer-uploaded-zh")
    receipt_id = live_app.scalar("SELECT r.id FROM bank_transfer_receipt r JOIN \"order\" o ON o.id = r.order_id "
                                 "WHERE o.number = :n", n=number)

    # Finance: the flag in the list (and its filter), the receipt image inline, the amount received.
    finance = chinese_page("finance")
    finance.goto(live_app.url("/admin/bank_transfer_review/?flt0_amount_vs_order_total_equals=1"))
    row = finance.locator("tr", has_text=number)
    expect(row).to_contain_text("≠")
    expect(row.locator(".badge-danger")).to_be_visible()
    shot(finance, "bank-transfer-list-zh")
    finance.goto(live_app.url(f"/admin/bank_transfer_review/review/?id={receipt_id}"))
    image = finance.locator("#rd-receipt-image")
    expect(image).to_be_visible()
    assert finance.evaluate("document.getElementById('rd-receipt-image').naturalWidth") > 100
    expect(finance.locator("#rd-mismatch")).to_contain_text("¥2,100.00")
    shot(finance, "bank-transfer-review-zh")
    finance.fill("#rd-received-input", "2,100.00")
    with finance.expect_navigation():
        finance.click("#rd-confirm")
    # The server's confirmation page says where the money goes before anything is credited.
    expect(finance.locator("#rd-confirm-summary")).to_contain_text("与订单金额 ¥2,160.00 不符")
    assert live_app.scalar("SELECT status FROM bank_transfer_receipt WHERE id = :i", i=receipt_id) == "submitted"
    with finance.expect_navigation():
        finance.click("#rd-confirm-yes")
    expect(finance.locator(".alert-warning")).to_contain_text("已计入客户余额")
    shot(finance, "bank-transfer-confirmed-zh")
    assert live_app.scalar("SELECT status FROM \"order\" WHERE number = :n", n=number) == "pending"
    assert live_app.scalar("SELECT status FROM bank_transfer_receipt WHERE id = :i", i=receipt_id) == "credited"
    assert live_app.scalar("SELECT amount_minor FROM ledger_entry WHERE idempotency_key = :k",
                           k=f"bank-receipt:{receipt_id}") == 210000


def test_province_city_and_device_type_are_chosen_from_lists(chinese_page, live_app):
    customer = chinese_page("customer")
    customer.goto(live_app.url("/admin/company_profile/"))
    province, city = customer.locator("#province"), customer.locator("#city")
    expect(province).to_have_value("上海市")  # the demo company's address
    province.select_option("广东省")
    expect(city.locator("option", has_text="深圳市")).to_have_count(1)
    expect(city.locator("option", has_text="杭州市")).to_have_count(0)
    city.select_option("深圳市")
    province.select_option("Hà Nội")
    expect(city).to_be_disabled()  # Vietnamese provinces have no city level
    province.select_option("广东省")
    city.select_option("深圳市")
    customer.fill("#full_name", "陈经理")
    customer.fill("#user_phone", "021-6888 8888")
    shot(customer, "province-city-zh")
    with customer.expect_navigation():
        customer.click("#rd-save")
    expect(customer.locator(".alert-success")).to_be_visible()
    assert live_app.rows("SELECT province, city FROM company WHERE name = 'Acme Logistics'")[0] == ("广东省", "深圳市")

    support = chinese_page("support")
    support.goto(live_app.url("/admin/device_package/bind-type/"))
    types = support.locator("#rd-type")
    expect(types).to_have_js_property("tagName", "SELECT")
    expect(types.locator("option", has_text="GPS tracker")).to_have_count(1)
    types.select_option("OBD dongle")
    shot(support, "device-type-zh")
